"""Benchmark: time to load + validate + featurize the bundled panel, and a larger synthetic one;
time and peak memory of loading a large long-format CSV (issue 23).

Usage: `python scripts/bench_data.py` (peak memory: `/usr/bin/time -v python scripts/bench_data.py
--only bundled`). `--only csv` writes a long CSV of `--symbols` x `--bars` minute bars (timestamp,
symbol, open, high, low, close, volume) to a temp folder and loads it in fresh subprocesses: in
full, and two symbols (`symbols=["S00", "S01"]`, what `--symbols S00,S01` passes). Each child
reports its own peak RSS (`ru_maxrss`), so one load's memory is not hidden by another's.
`--package-root DIR` loads with the `multiagent` package found in DIR instead (the code before a
change: `git archive HEAD multiagent | tar -x -C DIR`). Prints a table; figures go to
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from multiagent.data.bundled import load_bundled
from multiagent.data.featurize import compute_features
from multiagent.data.synthetic import SyntheticMarketConfig, generate_market


def _best_of(repeat: int, fn):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    return best, result


_CHILD = """
import json, os, resource, sys, time
root = os.environ.get("BENCH_PACKAGE_ROOT")
if root:  # an editable install's finder would win over PYTHONPATH: drop it
    sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, root)
from multiagent.data.loaders import load_panel
path, wanted = sys.argv[1], sys.argv[2]
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
panel = load_panel(path, symbols=wanted.split(",") if wanted else None)
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import multiagent
print(json.dumps({"package": multiagent.__file__, "seconds": seconds, "peak_kib": peak,
                  "import_kib": imported, "symbols": panel.n_symbols, "bars": panel.n_bars}))
"""


def write_long_csv(path: Path, n_symbols: int, n_bars: int, seed: int = 0) -> Path:
    """A valid long CSV of minute bars, time-major (every symbol's bar at t, then t+1), as an
    exchange dump interleaves them. Log prices mean-revert around 100, so 2-decimal prices
    neither go stale nor jump, and the file passes validation with default options."""
    rng = np.random.default_rng(seed)
    minutes = np.datetime64("2020-01-01T00:00") + np.arange(n_bars).astype("timedelta64[m]")
    stamps = np.datetime_as_string(minutes, unit="m")
    shocks = rng.normal(0, 0.003, (n_bars, n_symbols))
    log_price = np.empty_like(shocks)
    log_price[0] = 0.0
    for t in range(1, n_bars):
        log_price[t] = 0.999 * log_price[t - 1] + shocks[t]
    close = np.round(100 * np.exp(log_price), 2)
    open_ = np.vstack([close[:1], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, close.shape))
    high = np.round(np.maximum(open_, close) * (1 + spread), 2)
    low = np.round(np.minimum(open_, close) * (1 - spread), 2)
    volume = rng.integers(1, 1000, close.shape)
    names = np.array([f"S{i:02d}" for i in range(n_symbols)])
    table = pa.table(
        {
            "timestamp": np.repeat(stamps, n_symbols),
            "symbol": np.tile(names, n_bars),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
    return path


def _load_in_child(path: Path, symbols: str, package_root: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if package_root is not None:
        env["BENCH_PACKAGE_ROOT"] = package_root
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), symbols],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_csv(n_symbols: int, n_bars: int, package_root: str | None, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.csv"
        # Written by a child too: memory the writer held would count in every later child's
        # ru_maxrss (a forked child starts at its parent's resident size).
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--write-csv",
                str(path),
                "--symbols",
                str(n_symbols),
                "--bars",
                str(n_bars),
            ],
            check=True,
        )
        size = path.stat().st_size
        print(f"{path.name}: {n_symbols} x {n_bars} bars, {size / 2**20:.0f} MiB")
        print(f"{'load':<14}{'seconds':>9}{'peak MiB':>10}{'import MiB':>12}{'peak/file':>11}")
        for label, wanted in (("full", ""), ("S00,S01", "S00,S01")):
            runs = [_load_in_child(path, wanted, package_root) for _ in range(repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            peak = max(r["peak_kib"] for r in runs) / 1024
            print(
                f"{label:<14}{best['seconds']:>9.2f}{peak:>10.0f}"
                f"{best['import_kib'] / 1024:>12.0f}{peak * 2**20 / size:>11.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["bundled", "synthetic", "csv"], default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=50, help="csv: symbols in the file")
    parser.add_argument("--bars", type=int, default=200_000, help="csv: bars per symbol")
    parser.add_argument("--package-root", default=None, help="csv: load with this multiagent")
    parser.add_argument("--write-csv", default=None, help="only write the long CSV to this path")
    args = parser.parse_args()
    if args.write_csv is not None:
        write_long_csv(Path(args.write_csv), args.symbols, args.bars)
        return
    if args.only == "csv":
        bench_csv(args.symbols, args.bars, args.package_root, args.repeat)
        return
    rows = []
    if args.only in (None, "bundled"):
        load_s, panel = _best_of(args.repeat, lambda: load_bundled("sp500"))
        feat_s, features = _best_of(args.repeat, lambda: compute_features(panel))
        rows.append(
            (
                "bundled sp500",
                panel.n_symbols,
                panel.n_bars,
                features.values.shape[2],
                load_s,
                feat_s,
            )
        )
    if args.only in (None, "synthetic"):
        config = SyntheticMarketConfig(n_symbols=100, n_bars=10_000, seed=0)
        gen_s, market = _best_of(1, lambda: generate_market(config))
        feat_s, features = _best_of(1, lambda: compute_features(market.panel))
        rows.append(("synthetic 100x10k", 100, 10_000, features.values.shape[2], gen_s, feat_s))
    print(f"{'dataset':<20}{'symbols':>8}{'bars':>8}{'feats':>7}{'load s':>9}{'feat s':>9}")
    for name, s, t, f, load_s, feat_s in rows:
        print(f"{name:<20}{s:>8}{t:>8}{f:>7}{load_s:>9.3f}{feat_s:>9.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
