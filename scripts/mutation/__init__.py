"""The parts of scripts/mutate.py: the mutants (operators) and the runs (runner)."""
