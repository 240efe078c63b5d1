"""Channel provider adapters, each speaking a real provider's wire format."""
