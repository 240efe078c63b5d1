"""Segments: conditions over what is known of a customer, and who meets them."""
