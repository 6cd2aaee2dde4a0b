"""Session fixture for a real Kafka broker (owned by the bus work; placeholder until it lands)."""
