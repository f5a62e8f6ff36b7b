"""Running jobs: single runs, staged workflows, comparisons and LR-finder
sweeps, all yielding :mod:`engine.events` to whoever consumes them (the CLI or
the window)."""
