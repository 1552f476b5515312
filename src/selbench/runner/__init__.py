"""Step graph, the content-addressed step store, and executors (local, Ray)."""
