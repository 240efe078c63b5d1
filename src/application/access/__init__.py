"""Who may use Chorus: creating API keys for agents and teams that exist."""
