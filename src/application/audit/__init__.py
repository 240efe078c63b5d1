"""What auditors ask of the event log: a customer as of an instant, the raw log, decisions."""
