"""Deployment infrastructure: the queue template merged by `chalice package` (see stack.py)."""
