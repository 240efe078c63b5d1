"""What the assistant says about an inbound message: its intent, sentiment and urgency."""
