"""Use cases of triggers: define, redefine and delete them."""
