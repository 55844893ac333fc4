"""Config errors name file, key and expectation; the CLI exits cleanly with messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.frames import ohlcv_frame, write
from typer.testing import CliRunner

from multiagent.cli import app
from multiagent.config import RunConfig, load_config, load_preset
from multiagent.errors import ConfigError

runner = CliRunner()


def test_presets_load() -> None:
    assert load_preset("default").data.bundled == "sp500"
    assert load_preset("quick").data.symbols == ("AAPL", "JPM", "KO", "MSFT", "XOM")
    with pytest.raises(ConfigError, match="no preset"):
        load_preset("huge")


def test_unknown_key_and_wrong_type_are_named(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: abc\nfeatures:\n  features:\n    returns: [1, x]\n  colour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "`seed`" in message and "integer" in message
    assert "`features.features.returns.1`" in message
    assert "`features.colour`: unknown key" in message


def test_bad_yaml_gives_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_data_source_must_be_one(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  bundled: null\n")
    with pytest.raises(
        ConfigError, match="exactly one of `bundled`, `paths`, `synthetic` and `sessions`"
    ):
        load_config(path)
    path.write_text("data:\n  bundled: sp500\n  synthetic: {n_symbols: 2}\n")
    with pytest.raises(ConfigError, match="exactly one of"):
        load_config(path)


def test_synthetic_source_replaces_the_bundled_default(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  synthetic: {n_symbols: 3, n_bars: 300, seed: 4}\n")
    config = load_config(path)
    assert config.data.bundled is None
    assert config.data.synthetic is not None and config.data.synthetic.seed == 4


def test_relative_paths_resolve_against_config(tmp_path: Path) -> None:
    write(ohlcv_frame(), tmp_path / "data" / "A.csv")
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  bundled: null\n  paths: [data]\n")
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert config.data.paths == (str((tmp_path / "data").resolve()),)


def test_cli_validate_ok_and_failure_without_traceback(tmp_path: Path) -> None:
    good = write(ohlcv_frame(), tmp_path / "good" / "A.csv")
    result = runner.invoke(app, ["data", "validate", str(good)])
    assert result.exit_code == 0 and "OK" in result.output
    frame = ohlcv_frame()
    frame.loc[3, "close"] = -1.0
    bad = write(frame, tmp_path / "bad" / "A.csv")
    result = runner.invoke(app, ["data", "validate", str(bad)])
    assert result.exit_code == 1
    assert "row 4" in result.output and "zero or negative" in result.output
    assert "Traceback" not in result.output


def test_cli_fix_flags_and_thresholds(tmp_path: Path) -> None:
    frame = ohlcv_frame()
    frame = pd.concat([frame.iloc[:10], frame.iloc[9:10], frame.iloc[10:]])
    path = write(frame, tmp_path / "A.csv")
    assert runner.invoke(app, ["data", "validate", str(path)]).exit_code == 1
    result = runner.invoke(app, ["data", "validate", str(path), "--drop-duplicates"])
    assert result.exit_code == 0 and "dropped 1 rows" in result.output


def test_cli_bundled_info_and_list() -> None:
    result = runner.invoke(app, ["data", "info", "bundled:us_indices"])
    assert result.exit_code == 0 and "SPX" in result.output
    assert "sp500_raw" in runner.invoke(app, ["data", "bundled"]).output
    failed = runner.invoke(app, ["data", "validate", "bundled:sp500_raw"])
    assert failed.exit_code == 1 and "RRC" in failed.output


def test_cli_synth_writes_valid_data_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["data", "synth", str(out), "--n-symbols", "3", "--n-bars", "300", "--seed", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "oracle Sharpe" in result.output
    assert len(list(out.glob("*.csv"))) == 3
    assert runner.invoke(app, ["data", "validate", str(out)]).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_cli_synth_mixed_signs_writes_trending_and_reverting_symbols(tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    args = ["data", "synth", str(out), "--n-symbols", "3", "--n-bars", "3000", "--seed", "1"]
    mixed = [*args, "--signal", "momentum", "--signal-r2", "0.05", "--signal-sign", "mixed"]
    result = runner.invoke(app, mixed)
    assert result.exit_code == 0, result.output
    lag1 = []
    for name in ("SYN000", "SYN001"):
        returns = np.diff(np.log(pd.read_csv(out / f"{name}.csv")["close"].to_numpy()))
        lag1.append(np.corrcoef(returns[:-1], returns[1:])[0, 1])
    assert lag1[0] > 0.1 and lag1[1] < -0.1
    refused = runner.invoke(app, [*args, "--overwrite", "--signal-sign", "mixed"])
    assert refused.exit_code == 1 and "applies to signal 'momentum' only" in " ".join(
        refused.output.split()
    )


def test_cli_synth_sessions_parquet(tmp_path: Path) -> None:
    out = tmp_path / "sessions"
    result = runner.invoke(
        app,
        [
            "data",
            "synth",
            str(out),
            "--kind",
            "sessions",
            "--n-symbols",
            "5",
            "--format",
            "parquet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.parquet"))) == 5


def test_cli_run_quick_preset_and_bad_config(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--preset", "quick", "--no-train"])
    assert result.exit_code == 0, result.output
    assert "train:" in result.output and "fingerprint" in result.output
    # A smoke preset says what it can and cannot show, and what to run for a real result.
    shown = " ".join(result.output.split())
    assert "The quick preset is a smoke test" in shown and "learn_check_symbols.py" in shown
    # Tables are not cut at 80 columns when the output is not a terminal.
    assert "…" not in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("sed: 1\n")
    result = runner.invoke(app, ["run", "--config", str(bad)])
    assert result.exit_code == 1 and "`sed`: unknown key" in result.output


def test_help_everywhere() -> None:
    for args in (
        ["--help"],
        ["data", "--help"],
        ["data", "validate", "--help"],
        ["run", "--help"],
        ["pretrain", "--help"],
        ["train", "--help"],
        ["train", "symbols", "--help"],
    ):
        assert runner.invoke(app, args).exit_code == 0


def test_a_minibatch_must_fit_the_rows_of_an_iteration(tmp_path: Path) -> None:
    """Phase 2's vector env gives its module N rows a bar; the multi-agent phases count bars."""
    ppo = {"train_batch_size": 100, "minibatch_size": 400}
    fits = RunConfig.model_validate({"env": {"n_symbols": 4}, "symbols": {"ppo": ppo}})
    assert fits.symbols.ppo.minibatch_size == 400  # 100 bars x 4 slots
    path = tmp_path / "run.yaml"
    path.write_text(
        "env:\n  n_symbols: 4\nsymbols:\n  vector_env: false\n  ppo:\n"
        "    train_batch_size: 100\n    minibatch_size: 400\n",
    )
    with pytest.raises(
        ConfigError,
        match=r"symbols\.ppo\.minibatch_size \(400\) must not exceed "
        r"the rows of an iteration \(train_batch_size = 100\)",
    ):
        load_config(path)
    path.write_text("master:\n  ppo:\n    train_batch_size: 100\n    minibatch_size: 101\n")
    with pytest.raises(ConfigError, match=r"master\.ppo\.minibatch_size \(101\)"):
        load_config(path)
