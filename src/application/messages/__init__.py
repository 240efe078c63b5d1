"""Send requests: decided against the rules, recorded with their reasons."""
