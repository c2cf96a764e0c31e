"""The dashboard, driven in a real browser: one test module per panel, their fixtures in conftest.py."""
