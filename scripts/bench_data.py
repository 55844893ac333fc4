"""Benchmark: time to load + validate + featurize the bundled panel, and a larger synthetic one.

Usage: `python scripts/bench_data.py` (peak memory: `/usr/bin/time -v python scripts/bench_data.py
--only bundled`). Prints a table; figures go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import resource
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["bundled", "synthetic"], default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
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
