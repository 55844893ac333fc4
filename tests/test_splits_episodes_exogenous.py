"""Split boundaries, walk-forward folds, held-out names, episode views, exogenous joins."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multiagent.data.bundled import EXOGENOUS, bundled_path, load_bundled
from multiagent.data.episodes import difficulty, make_views
from multiagent.data.errors import DataValidationError
from multiagent.data.exogenous import ExogenousSeries, asof_join, load_exogenous
from multiagent.data.splits import (
    SplitConfig,
    WalkForwardConfig,
    chronological_split,
    held_out,
    walk_forward_folds,
)
from multiagent.data.synthetic import SessionConfig, generate_sessions


def test_chronological_split_boundaries_and_purge() -> None:
    split = chronological_split(1000, SplitConfig(train=0.6, validation=0.2, purge=5))
    assert (split.train.start, split.train.stop) == (0, 600)
    assert (split.validation.start, split.validation.stop) == (605, 805)
    assert (split.test.start, split.test.stop) == (810, 1000)
    with pytest.raises(ValueError, match="leaves no test"):
        SplitConfig(train=0.8, validation=0.2)


@pytest.mark.parametrize("scheme", ["rolling", "expanding"])
def test_walk_forward_folds_never_overlap_purge_or_future(scheme: str) -> None:
    config = WalkForwardConfig(scheme=scheme, train_bars=200, test_bars=50, purge=10)  # type: ignore[arg-type]
    folds = walk_forward_folds(1000, config)
    assert len(folds) == 15
    for fold in folds:
        assert fold.train.stop + 10 == fold.test.start
        assert len(fold.test) == 50
        assert len(fold.train) == (200 if scheme == "rolling" else fold.train.stop)
    assert all(b.test.start - a.test.start == 50 for a, b in itertools.pairwise(folds))
    assert folds[-1].test.stop <= 1000


def test_rolling_embargo_trims_train_windows() -> None:
    config = WalkForwardConfig(scheme="rolling", train_bars=100, test_bars=50, step=20, embargo=70)
    folds = walk_forward_folds(400, config)
    for previous, fold in itertools.pairwise(folds):
        assert fold.train.start >= min(previous.test.start + 70, fold.train.stop)


def test_walk_forward_too_short() -> None:
    with pytest.raises(ValueError, match="too few"):
        walk_forward_folds(100, WalkForwardConfig(train_bars=90, test_bars=20))


def test_held_out_names_are_disjoint_seeded_and_order_free() -> None:
    names = [f"S{i}" for i in range(50)]
    keep, out = held_out(names, 0.2, seed=1)
    assert len(out) == 10 and not set(keep) & set(out) and set(keep) | set(out) == set(names)
    assert held_out(list(reversed(names)), 0.2, seed=1) == (keep, out)
    assert held_out(names, 0.2, seed=2)[1] != out


def test_episode_views_respect_window_length_and_min_length() -> None:
    panel = generate_sessions(SessionConfig(n_sessions=40, seed=0))
    views = make_views(panel, length=None, min_length=50)
    assert views and all(
        int(panel.observed[panel.symbol_index(v.symbols[0])].sum()) >= 50 for v in views
    )
    assert all(0 < v.coverage <= 1 and v.spread > 0 for v in views)
    scores = [difficulty(v, views) for v in views]
    assert 0 <= min(scores) < max(scores) <= 1
    bundled = load_bundled("sp500", symbols=["AAPL", "KO"])
    cut = make_views(bundled, length=250)
    assert all(v.length == 250 for v in cut)
    aapl = [v for v in cut if v.symbols == ("AAPL",)]
    ko = [v for v in cut if v.symbols == ("KO",)]
    assert np.mean([v.volatility for v in aapl]) > np.mean([v.volatility for v in ko])


def test_asof_join_with_publication_lag() -> None:
    panel = load_bundled("sp500", symbols=["AAPL", "KO"], start="2020-01-01", end="2020-01-31")
    stamps = np.array(["2020-01-02", "2020-01-06"], dtype="datetime64[ns]")
    series = ExogenousSeries(stamps, {"x": np.array([1.0, 2.0])})
    times = pd.DatetimeIndex(panel.timestamps)
    same_day = asof_join(panel, series)["x"][0]
    assert same_day[times.get_loc("2020-01-02")] == 1.0
    assert same_day[times.get_loc("2020-01-06")] == 2.0
    lagged = asof_join(panel, series, "1D")["x"][0]
    assert np.isnan(lagged[times.get_loc("2020-01-02")])
    assert lagged[times.get_loc("2020-01-03")] == 1.0
    assert lagged[times.get_loc("2020-01-06")] == 1.0
    assert lagged[times.get_loc("2020-01-07")] == 2.0


def test_per_symbol_exogenous_file(tmp_path: Path) -> None:
    panel = load_bundled("sp500", symbols=["AAPL", "KO"], start="2020-01-01", end="2020-01-10")
    path = tmp_path / "sentiment.csv"
    pd.DataFrame(
        {"date": ["2020-01-03", "2020-01-03"], "ticker": ["AAPL", "XYZ"], "sentiment": [0.5, 9.0]}
    ).to_csv(path, index=False)
    joined = asof_join(panel, load_exogenous(path))["sentiment"]
    assert np.nanmax(joined[0]) == 0.5 and np.isnan(joined[1]).all()


def test_bundled_vix_joins_and_bad_exogenous_files_are_named(tmp_path: Path) -> None:
    vix = load_exogenous(bundled_path(EXOGENOUS["vix"]))
    panel = load_bundled("sp500", symbols=["AAPL"], start="2015-01-01", end="2015-12-31")
    assert np.isfinite(asof_join(panel, vix)["vix"]).all()
    bad = tmp_path / "bad.csv"
    bad.write_text("date,vix\n2020-01-02,12\n2020-01-03,oops\n")
    with pytest.raises(DataValidationError) as caught:
        load_exogenous(bad)
    assert caught.value.problems[0].rows == (2, 2) and caught.value.problems[0].column == "vix"
