"""The customer: one profile per person, whatever channel they come from."""
