"""Signals: what happened about a customer, as producers reported it."""
