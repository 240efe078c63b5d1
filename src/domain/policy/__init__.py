"""The communication rules: a pure domain service that decides whether, when and where a message goes."""
