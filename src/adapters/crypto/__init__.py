"""Envelope encryption of personal data: a data key per customer, wrapped by a master key."""
