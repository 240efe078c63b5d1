"""Conversations as agents work them: agents, teams, the routing document, the agent's commands
on a conversation (reply, note, snooze, resolve, reopen); threads from inbound messages, routing,
queues, assignment and transfer."""
