"""The HTTP routes, one module per job; api.py builds the app and registers them."""
