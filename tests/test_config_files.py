"""Run config files as a user writes them: what they extend, where each value comes from, and
one clear line for a file that is not UTF-8 or names a key twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from multiagent.cli import app
from multiagent.config import RunConfig, load_config, load_preset
from multiagent.config.loading import config_layers
from multiagent.config.show import show_config
from multiagent.errors import ConfigError

runner = CliRunner()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_with_one_key_is_the_default_preset_with_that_key(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path / "run.yaml", "seed: 1\n"))
    default = load_preset("default")
    assert config == default.model_copy(update={"seed": 1})


def test_section_keys_override_one_by_one_over_a_named_preset(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.yaml", "extends: quick\nenv:\n  limits:\n    max_weight: 0.3\n")
    config = load_config(path)
    quick = load_preset("quick")
    assert config.env.limits.max_weight == 0.3
    assert config.env.limits.drawdown_breaker == quick.env.limits.drawdown_breaker
    assert config.data == quick.data and config.symbols == quick.symbols


def test_extends_a_file_relative_to_this_one_and_its_data_paths_stay_its_own(
    tmp_path: Path,
) -> None:
    data = _write(tmp_path / "common" / "prices.csv", "timestamp,close\n")
    _write(
        tmp_path / "common" / "base.yaml",
        "extends: quick\ndata:\n  paths: [prices.csv]\nseed: 5\n",
    )
    path = _write(tmp_path / "runs" / "run.yaml", "extends: ../common/base.yaml\nseed: 6\n")
    config = load_config(path)
    assert config.seed == 6
    assert config.data.paths == (str(data.resolve()),)
    assert config.data.bundled is None  # the file's source replaced the preset's data:
    assert config.data.symbols is None and config.data.start is None  # quick's 5 stocks, 2015
    assert config.symbols == load_preset("quick").symbols


def test_extends_none_starts_from_the_bare_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "run.yaml",
        "extends: none\ndata:\n  synthetic: {n_symbols: 4, n_bars: 500}\n",
    )
    config = load_config(path)
    assert config.pretrain == RunConfig().pretrain and config.symbols == RunConfig().symbols


def test_a_data_source_replaces_the_presets_instead_of_adding_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.yaml", "data:\n  synthetic: {n_symbols: 4}\n")
    config = load_config(path)
    assert config.data.bundled is None and config.data.synthetic is not None


def test_a_single_agent_system_extends_its_own_preset(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path / "run.yaml", "system: portfolio\nseed: 2\n"))
    assert config == load_preset("portfolio").model_copy(update={"seed": 2})


def test_a_saved_complete_config_loads_back_equal(tmp_path: Path) -> None:
    """Run folders store the whole config; extending the default changes none of it."""
    for name in ("quick", "portfolio"):
        original = load_preset(name).model_copy(update={"seed": 9})
        path = _write(tmp_path / f"{name}.yaml", yaml.safe_dump(original.model_dump(mode="json")))
        assert load_config(path) == original


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("extends: nowhere.yaml\n", "neither a preset"),
        ("extends: 3\n", "`extends` must be a preset"),
        ("system: nonsense\n", "`system` must be hierarchy"),
    ],
)
def test_bad_extends_are_refused_with_the_way_out(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path / "run.yaml", text))


def test_an_extends_cycle_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "extends: b.yaml\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="makes a cycle"):
        load_config(tmp_path / "a.yaml")


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.yaml", "seed: 1\nmaster:\n  ppo:\n    lr: 0.1\n    lr: 0.2\n")
    with pytest.raises(
        ConfigError, match=r"run.yaml: line 5, .*`lr` appears twice \(lines 4 and 5"
    ):
        load_config(path)


def test_a_file_that_is_not_utf8_names_itself_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"seed: 1\n\x89PNG\n")
    with pytest.raises(ConfigError, match=r"run.yaml: not UTF-8 text \(byte 0x89 on line 2\)"):
        load_config(path)
    path.write_bytes(b"\xef\xbb\xbfseed: 3\n")  # a BOM, as some editors write
    assert load_config(path).seed == 3


def test_show_names_where_every_value_comes_from(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.yaml", "extends: quick\nseed: 4\n")
    text = show_config(config_layers(path))
    assert f"# resolved: built-in <- preset:default <- preset:quick <- {path}" not in text
    assert text.startswith(f"# resolved: built-in <- preset:quick <- {path}")
    assert f"seed: 4  # {path}" in text
    assert 'bundled: "sp500"  # preset:quick' in text
    assert 'system: "hierarchy"  # built-in' in text
    lines = [line for line in text.splitlines()[1:] if ": " in line and not line.endswith(":")]
    assert all("  # " in line for line in lines)
    # The printed YAML is the config itself.
    assert RunConfig.model_validate(yaml.safe_load(text)) == load_config(path)


def test_show_says_a_replaced_source_is_not_the_presets(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.yaml", "data:\n  synthetic: {n_symbols: 4}\n")
    text = show_config(config_layers(path))
    assert "bundled: null  # built-in" in text
    assert f"n_symbols: 4  # {path}" in text


def test_cli_config_show(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.yaml", "seed: 7\n")
    result = runner.invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "seed: 7  #" in result.output
    preset = runner.invoke(app, ["config", "show", "--preset", "cluster"])
    assert preset.exit_code == 0 and "# preset:cluster" in preset.output
    bad = runner.invoke(app, ["config", "show", "--preset", "nope"])
    assert bad.exit_code == 1 and "no preset 'nope'" in bad.output


def test_cli_option_errors_name_the_option_without_a_url(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "s"), "--n-symbols", "-3"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "--n-symbols: Input should be greater than or equal to 1 (got -3)" in output
    assert "http" not in output and "Traceback" not in output
