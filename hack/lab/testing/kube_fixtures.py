"""pytest fixtures for the API emulator."""
