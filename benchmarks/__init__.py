"""asv benchmarks for chainrule (see docs/benchmarks.md). Run from the repository root:
``asv machine --yes; asv run --python=same --quick``."""
