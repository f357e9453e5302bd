"""MMMS, the Mail Micro Service: the application library shipped beside ``app.py``."""
