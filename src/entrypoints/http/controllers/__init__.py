"""One controller per resource; thin: validate, call a use case, shape the answer."""
