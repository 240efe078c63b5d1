"""Templates: message content per channel and locale, every version kept."""
