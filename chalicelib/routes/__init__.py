"""The route table's groups, one module each; ``app.py`` includes them in order."""
