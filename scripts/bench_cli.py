"""Wall time of `multiagent` commands that should answer at once (issue 23: under 1 s).

Each command runs as a fresh process, as a user types it (the console script, with the
interpreter's start-up and the string-hash re-execution of `multiagent.__main__`), ``--repeat``
times; the median and the slowest are reported. No timing is asserted anywhere: this script
measures, `docs/benchmarks.md` records.

    python scripts/bench_cli.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = (
    ("--help",),
    ("data", "--help"),
    ("data", "bundled"),
    ("config", "show"),
    ("data", "validate", "bundled:us_indices"),
    ("data", "validate", "small.csv"),
)


def _small_csv(folder: Path) -> None:
    """A 2-symbol, 500-bar long CSV: what a first `data validate` of one's own file reads."""
    lines = ["timestamp,symbol,close"]
    for symbol in ("AAA", "BBB"):
        price = 100.0
        for day in range(500):
            price *= 1.0 + 0.01 * ((day * 7919 + len(symbol)) % 11 - 5) / 5
            lines.append(
                f"2020-01-01T00:00:00+00:00,{symbol},{price:.4f}".replace(
                    "2020-01-01", str(_date(day))
                )
            )
    (folder / "small.csv").write_text("\n".join(lines) + "\n")


def _date(day: int) -> str:
    import datetime as dt

    return (dt.date(2020, 1, 1) + dt.timedelta(days=day)).isoformat()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    program = shutil.which("multiagent") or str(Path(sys.executable).parent / "multiagent")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _small_csv(folder)
        for command in COMMANDS:
            seconds = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                done = subprocess.run(
                    [program, *command], cwd=folder, capture_output=True, text=True
                )
                seconds.append(time.perf_counter() - began)
                if done.returncode != 0:
                    raise SystemExit(f"multiagent {' '.join(command)} failed:\n{done.stderr}")
            rows.append(
                {
                    "command": "multiagent " + " ".join(command),
                    "median_s": statistics.median(seconds),
                    "max_s": max(seconds),
                }
            )
            print(
                f"{rows[-1]['command']:<48} median {rows[-1]['median_s']:.2f} s, "
                f"max {rows[-1]['max_s']:.2f} s"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
