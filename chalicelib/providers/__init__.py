"""Mail providers behind one contract (see ``base``), and the failover chain."""
