"""In-memory adapters of every port, for unit tests of the use cases: no server, no I/O."""
