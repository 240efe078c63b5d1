"""Kernel shared by every aggregate: errors and the aggregate base."""
