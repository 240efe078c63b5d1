"""NATS JetStream: the bus Chorus publishes its outbound events on and takes signals from."""
