"""What the suites in the Who&When layout share (Who&When, CORRECT-Error): reading the per-case JSON files,
the paper's three failure-attribution methods as solvers, and the agent/step scoring."""
