"""Template rendering in a sandbox."""
