"""`newsmon demo`: sample feeds served locally, the whole pipeline, alerts printed as a subscriber gets them."""
