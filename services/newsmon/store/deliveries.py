"""Tables and queries: deliveries (to be filled by its owner)."""
