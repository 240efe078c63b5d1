"""Triggers: what a campaign starts on (a signal, a segment entry or exit), and each firing."""
