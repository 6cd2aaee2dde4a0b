"""Tables and queries: tokens (to be filled by its owner)."""
