"""multiagent: distributed, hierarchical, multi-agent reinforcement-learning trading on Ray."""

__version__ = "0.1.0"
