"""A run: its data prepared for training (load -> features -> split -> views) and its folder
(config, records, the next free name, atomic writes)."""
