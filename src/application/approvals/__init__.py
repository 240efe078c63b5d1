"""Messages the rules hold for an operator: approve, edit, reject, or let expire."""
