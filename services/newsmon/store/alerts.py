"""Tables and queries: alerts (to be filled by its owner)."""
