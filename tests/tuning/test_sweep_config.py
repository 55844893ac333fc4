"""Sweep files, search-space overrides, walk-forward folds and the test seal (no Ray)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from multiagent.config import RunConfig, load_preset
from multiagent.data.splits import chronological_split
from multiagent.errors import ConfigError, LeakageError
from multiagent.runs.prepare import prepare
from multiagent.tuning.config import load_sweep
from multiagent.tuning.folds import fold_configs
from multiagent.tuning.space import apply_overrides

REPO = Path(__file__).resolve().parents[2]


def sweep_file(tmp_path: Path, **fields: Any) -> Path:
    payload: dict[str, Any] = {
        "name": "t",
        "base": {"preset": "quick"},
        "space": {"symbols.ppo.lr": {"loguniform": [1e-5, 1e-3]}},
        **fields,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(payload))
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "tune_configs").glob("*.yaml")))
def test_shipped_sweeps_load(name: str) -> None:
    sweep, base = load_sweep(REPO / "tune_configs" / name)
    assert sweep.space and isinstance(base, RunConfig)


def test_overrides_keep_sibling_settings() -> None:
    base = load_preset("quick")
    tuned = apply_overrides(base, {"master.ppo.lr": 5e-4, "env.risk_mode_scales.2": 1.8})
    assert tuned.master.ppo.lr == 5e-4
    assert tuned.master.ppo.vf_clip_param == base.master.ppo.vf_clip_param == 1000.0
    assert tuned.env.risk_mode_scales == (0.5, 1.0, 1.8)
    assert tuned.symbols == base.symbols


def test_numpy_values_become_plain() -> None:
    tuned = apply_overrides(load_preset("quick"), {"symbols.ppo.lr": np.float64(1e-4)})
    assert type(tuned.symbols.ppo.lr) is float


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"symbols.ppo.lrr": {"uniform": [0.1, 0.2]}}, "no key 'lrr'"),
        ({"env.risk_mode_scales.7": {"uniform": [0.1, 0.2]}}, "not an index"),
        ({"symbols.ppo.lr": {"uniform": [-1.0, 0.1]}}, "symbols.ppo.lr"),
        ({"master.ppo.lr": {"uniform": [0.1, 0.2]}}, "trials train the symbols phase"),
        ({"symbols.ppo.lr": {"uniform": [0.2, 0.1]}}, "low < high"),
        ({"symbols.ppo.lr": {"uniform": [0.1, 0.2], "choice": [1]}}, "exactly one"),
        ({"seal_test": {"choice": [False]}}, "not a tunable key"),
    ],
)
def test_bad_spaces_name_the_key(tmp_path: Path, space: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_sweep(sweep_file(tmp_path, space=space))
    assert str(tmp_path / "sweep.yaml") in str(caught.value)


def test_bad_sweep_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folds: 1 with pbt"):
        load_sweep(sweep_file(tmp_path, search="pbt", folds=2))
    with pytest.raises(ConfigError, match="storage"):
        load_sweep(sweep_file(tmp_path, optuna={"storage": "optuna.db"}))
    with pytest.raises(ConfigError, match="unknown key"):
        load_sweep(sweep_file(tmp_path, serach="pbt"))


def synthetic(**split: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"synthetic": {"n_symbols": 3, "n_bars": 600, "seed": 1}},
            "split": {"train": 0.6, "validation": 0.2, "purge": 5, **split},
        }
    )


def test_folds_nest_inside_validation() -> None:
    config = synthetic()
    outer = chronological_split(600, config.split)
    folds = [chronological_split(600, f.split) for f in fold_configs(config, 600, 3)]
    assert len(folds) == 3
    slices = [f.validation for f in folds]
    assert slices[0].start == outer.validation.start
    for before, after in itertools.pairwise(slices):
        assert after.start == before.stop  # consecutive slices
    assert slices[-1].stop <= outer.validation.stop
    for fold, window in zip(folds, slices, strict=True):
        assert fold.train.stop + config.split.purge == window.start  # trains up to its slice
        assert len(window) == len(outer.validation) // 3
    assert all(f.seal_test for f in fold_configs(config, 600, 3))
    with pytest.raises(ConfigError, match="at least"):
        fold_configs(config, 600, 10)


def test_sealed_data_ends_with_validation_and_refuses_test(tmp_path: Path) -> None:
    config = synthetic().model_copy(update={"cache_dir": str(tmp_path)})
    open_ = prepare(config)
    sealed = prepare(config.model_copy(update={"seal_test": True}))
    end = open_.split.validation.stop
    assert sealed.panel.n_bars == end
    assert sealed.synthetic is None  # its hidden truth spans the test period
    with pytest.raises(LeakageError, match="sealed"):
        sealed.views("test")
    assert [v.window for v in sealed.views("validation")] == [
        v.window for v in open_.views("validation")
    ]
    # Same features on every bar a sealed run keeps: the seal changes nothing but the end.
    np.testing.assert_array_equal(
        sealed.features.values, open_.features.values[:, :end], strict=True
    )


def test_sealed_run_is_blind_to_the_test_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Perturb every bar after validation: a sealed run's data and features are bit-identical
    (nothing after validation can influence a trial)."""
    from dataclasses import replace

    from multiagent.runs import prepare as prepare_module

    config = synthetic().model_copy(update={"cache_dir": str(tmp_path), "seal_test": True})
    sealed = prepare(config, use_cache=False)
    end = sealed.panel.n_bars
    before = prepare(config.model_copy(update={"seal_test": False}), use_cache=False)
    original = prepare_module.generate_market

    def shocked(cfg: Any) -> Any:
        market = original(cfg)
        fields = {k: v.copy() for k, v in market.panel.fields.items()}
        for array in fields.values():
            array[:, end:] *= 3.0
        return replace(market, panel=replace(market.panel, fields=fields))

    monkeypatch.setattr(prepare_module, "generate_market", shocked)
    again = prepare(config, use_cache=False)
    unsealed = prepare(config.model_copy(update={"seal_test": False}), use_cache=False)
    # The shock reaches an unsealed run (so the check below is not vacuous)...
    assert not np.allclose(unsealed.features.values[:, end:], before.features.values[:, end:])
    # ...and leaves the sealed one bit-identical.
    assert again.panel.fingerprint() == sealed.panel.fingerprint()
    np.testing.assert_array_equal(again.features.values, sealed.features.values, strict=True)


def test_pbt_perturbations_stay_inside_the_space(tmp_path: Path) -> None:
    from multiagent.tuning.config import load_sweep as load
    from multiagent.tuning.tuner import ClipToSpace

    sweep, _ = load(
        sweep_file(
            tmp_path,
            target="master",
            space={
                "env.risk_mode_scales.2": {"uniform": [1.1, 2.0]},
                "master.ppo.lr": {"loguniform": [1e-5, 1e-3]},
                "master.ppo.clip_param": {"choice": [0.1, 0.2]},
            },
        )
    )
    clip = ClipToSpace(sweep)
    perturbed = {"env.risk_mode_scales.2": 0.9, "master.ppo.lr": 2e-3, "master.ppo.clip_param": 0.2}
    assert clip(perturbed) == {
        "env.risk_mode_scales.2": 1.1,
        "master.ppo.lr": 1e-3,
        "master.ppo.clip_param": 0.2,
    }


@pytest.mark.parametrize(
    ("uri", "expected"), [(None, "none"), ("sqlite:///s.db", "sqlite:///s.db")]
)
def test_the_base_pipeline_logs_where_the_sweep_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str | None, expected: str
) -> None:
    """`multiagent tune --tracking-uri none` switches tracking off for the phases trained once
    before the trials too; a sweep's store is the base pipeline's store."""
    from types import SimpleNamespace

    import multiagent.training.pipeline as pipeline_module
    from multiagent.tuning.config import load_sweep
    from multiagent.tuning.sweep import _prepare_base

    seen: list[str | None] = []

    class Recording:
        def __init__(self, config: RunConfig, run_dir: Path, **options: Any) -> None:
            seen.append(options.get("tracking_uri"))

        def run(self, phases: list[str], resume: bool) -> Any:
            return SimpleNamespace(phases={})

    monkeypatch.setattr(pipeline_module, "Pipeline", Recording)
    root = Path(__file__).resolve().parents[2]
    sweep, base = load_sweep(root / "tune_configs" / "symbols_pbt.yaml")
    base = base.model_copy(update={"cache_dir": str(tmp_path / "cache")})
    _prepare_base(sweep, base, tmp_path, lambda text: None, uri)
    assert seen == [expected]
