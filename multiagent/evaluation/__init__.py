"""Evaluation: metrics and deterministic policy rollouts (no Ray)."""
