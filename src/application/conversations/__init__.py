"""Conversation commands: threads from inbound messages, routing, assignment and transfer."""
