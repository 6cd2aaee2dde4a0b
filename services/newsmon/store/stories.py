"""Tables and queries: stories (to be filled by its owner)."""
