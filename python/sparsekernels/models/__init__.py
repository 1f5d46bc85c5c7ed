"""Real models the examples, tests and benchmarks run sparsified (their weights come from optional packages)."""
