"""Evaluation: the one backtester every policy and system is scored by, metrics, baselines,
walk-forward, stress tests, gates and reports (no Ray)."""
