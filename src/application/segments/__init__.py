"""Use cases of segments: define, redefine and delete them."""
