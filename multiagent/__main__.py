"""``multiagent`` / ``python -m multiagent``: fix the string-hash seed, then run the CLI.

Kept apart from `multiagent.cli` so the re-execution in `pin_hash_seed` happens before the
CLI's imports (numpy, pandas, Ray) are paid for once in vain."""

from __future__ import annotations


def main() -> None:
    from multiagent.reproducibility import pin_hash_seed

    pin_hash_seed()
    from multiagent.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
