"""Local fake providers for tests, benchmarks and the demo: they record, fail and hang on request."""
