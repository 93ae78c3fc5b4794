"""pytest fixtures over the lab, shared by every test suite (registered in tests/conftest.py)."""
