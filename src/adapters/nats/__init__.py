"""NATS JetStream: the bus Chorus publishes its outbound events on."""
