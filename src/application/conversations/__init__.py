"""Conversations as agents work them: agents, teams, the routing document, and the agent's
commands on a conversation (reply, note, snooze, resolve, reopen)."""
