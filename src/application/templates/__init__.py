"""Publishing templates."""
