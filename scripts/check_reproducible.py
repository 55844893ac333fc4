"""Train the same run twice and say whether the two are identical, bit for bit.

Both runs are the `multiagent` command in fresh processes (as a user would start them), with
the same config and seed, sampling in the driver unless the config says otherwise; then
`multiagent.training.reproducible.run_differences` compares every metrics row (wall-clock
fields aside) and every weight of every checkpoint and export.

    python scripts/check_reproducible.py                      # the quick preset, all phases
    python scripts/check_reproducible.py --config run.yaml --to-phase symbols
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from multiagent.training.reproducible import run_differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="run config (default: --preset)")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--to-phase", default="joint")
    parser.add_argument("--out", type=Path, help="keep both run folders here (default: temp)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="reproducible_"))
    source = ["--config", str(args.config)] if args.config else ["--preset", args.preset]
    for name in ("first", "second"):
        command = [sys.executable, "-m", "multiagent", "train", "pipeline", *source]
        command += ["--to-phase", args.to_phase, "--run-dir", str(out / name)]
        command += ["--tracking-uri", f"sqlite:///{out / name}.db"]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    found = run_differences(out / "first", out / "second")
    if found:
        print(f"{len(found)} differences between {out / 'first'} and {out / 'second'}:")
        print("\n".join(f"  {line}" for line in found[:50]))
        return 1
    print(f"identical: {out / 'first'} and {out / 'second'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
