"""The read side: what clients ask for, as plain data."""
