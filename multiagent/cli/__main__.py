"""``python -m multiagent.cli`` (what the job entrypoints and older instructions run): the
same command as ``multiagent`` / ``python -m multiagent``."""

from multiagent.cli import main
from multiagent.reproducibility import pin_hash_seed

if __name__ == "__main__":
    pin_hash_seed()  # before any training: see multiagent.reproducibility
    main()
