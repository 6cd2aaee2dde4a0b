"""Tables and queries: feeds (to be filled by its owner)."""
