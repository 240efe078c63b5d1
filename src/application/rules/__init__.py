"""Publishing rule sets."""
