"""Use cases on customers: ingest signals, upsert profiles, read them back."""
