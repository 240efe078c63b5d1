"""Process managers: what follows the log and decides, on typed events, what happens next."""
