"""Analysis: tables and statistics computed from cached results (pure functions, no I/O)."""
