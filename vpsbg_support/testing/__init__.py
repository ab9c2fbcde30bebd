"""An embedded fake of the VPSBG support API for tests, demos and benchmarks."""
