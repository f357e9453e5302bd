"""Running MMMS on one machine: embedded PostgreSQL, local gateway, worker. Never deployed."""
