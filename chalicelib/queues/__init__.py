"""Queue adapters: the processing queue (bulk fan-out) and the result queue (reports)."""
