"""Outbound events: what Chorus tells internal services over the bus, in a versioned contract."""
