"""Curriculum files: the examples load, and every bad file is one ConfigError naming the file,
the dotted key and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from multiagent.curriculum import load_curriculum
from multiagent.curriculum.config import TopLiquid
from multiagent.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "curricula"
END = {"iterations": 2}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "curriculum.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["liquid_to_all", "difficulty", "costs"])
def test_examples_load(name: str) -> None:
    config = load_curriculum(EXAMPLES / f"{name}.yaml")
    assert len(config.stages) >= 3
    assert not config.stages[-1].ends


def test_symbol_forms_parse(tmp_path: Path) -> None:
    config = load_curriculum(
        write(
            tmp_path,
            {
                "name": "c",
                "stages": [
                    {"name": "a", "symbols": {"top_liquid": 3}, **END},
                    {"name": "b", "symbols": ["X", "Y"], **END},
                    {"name": "c", "symbols": "all"},
                ],
            },
        )
    )
    assert config.stages[0].symbols == TopLiquid(top_liquid=3)
    assert config.stages[1].symbols == ("X", "Y")
    assert config.stages[2].symbols == "all"
    assert config.phases == ("symbols",) and config.metric == "val_sharpe"


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("symbols-string", {"symbols": "AAPL"}, "stages.0.symbols", "top_liquid: N"),
    ("symbols-empty-list", {"symbols": []}, "stages.0.symbols", "list of symbol names"),
    ("symbols-twice", {"symbols": ["A", "A"]}, "stages.0.symbols", "listed twice"),
    ("top-liquid-zero", {"symbols": {"top_liquid": 0}}, "stages.0.symbols.top_liquid", ">= 1"),
    ("top-liquid-extra", {"symbols": {"top_liquid": 2, "x": 1}}, "stages.0.symbols", "top_liquid"),
    ("volatility-order", {"volatility": [0.5, 0.2]}, "stages.0.volatility", "lo < hi"),
    ("difficulty-range", {"difficulty": [0.0, 1.5]}, "stages.0.difficulty", "hi <= 1"),
    ("difficulty-length", {"difficulty": [0.1]}, "stages.0.difficulty", "too few items"),
    ("both-ends", {"promote": {"at_least": 1.0}}, "stages.0.promote", "not both"),
    (
        "cost-negative",
        {"cost_multiplier": -1},
        "stages.0.cost_multiplier",
        "greater than or equal to 0",
    ),
    ("sampling", {"sampling": "hardest"}, "stages.0.sampling", "'worst'"),
    ("unknown-key", {"iteratons": 3}, "stages.0.iteratons", "unknown key"),
    ("iterations-zero", {"iterations": 0}, "stages.0.iterations", "greater than or equal to 1"),
    ("fall-back-first", {"fall_back": {"below": 0.0}}, "stages.0.fall_back", "first stage"),
]


@pytest.mark.parametrize(("case", "first", "key", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_first_stage(
    tmp_path: Path, case: str, first: dict[str, Any], key: str, expected: str
) -> None:
    path = write(tmp_path, {"name": "c", "stages": [{"name": "a", **END, **first}, {"name": "b"}]})
    with pytest.raises(ConfigError) as info:
        load_curriculum(path)
    message = str(info.value)
    assert str(path) in message and f"`{key}`" in message and expected in message, message
    assert message.count("\n  - ") == 1, message  # one problem, one line
    assert info.value.file == str(path)


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        (
            {"name": "c", "stages": [{"name": "a"}, {"name": "b"}]},
            "stages.0",
            "never ends",
        ),
        (
            {"name": "c", "stages": [{"name": "a", **END}, {"name": "b", **END}]},
            "stages.1.iterations",
            "last stage",
        ),
        (
            {"name": "c", "stages": [{"name": "a", **END}, {"name": "a"}]},
            "stages.1.name",
            "used twice",
        ),
        (
            {
                "name": "c",
                "stages": [
                    {
                        "name": "a",
                        "promote": {"at_least": 0, "min_iterations": 3, "max_iterations": 2},
                    },
                    {"name": "b"},
                ],
            },
            "stages.0.promote.max_iterations",
            "min_iterations",
        ),
        (
            {
                "name": "c",
                "stages": [
                    {"name": "a", "promote": {"at_least": 0, "min_iterations": 0}},
                    {"name": "b"},
                ],
            },
            "stages.0.promote.min_iterations",
            "greater than or equal to 1",
        ),
        ({"name": "c", "stages": []}, "stages", "at least one stage"),
        ({"name": "c", "phases": ["pretrain"], "stages": [{"name": "a"}]}, "phases.0", "'joint'"),
        ({"name": "c", "phases": [], "stages": [{"name": "a"}]}, "phases", "at least one phase"),
        (
            {"name": "c", "phases": ["symbols", "symbols"], "stages": [{"name": "a"}]},
            "phases",
            "twice",
        ),
        ({"stages": [{"name": "a"}]}, "name", "required"),
        ({"name": "c", "stages": [{"name": "a"}], "metrc": "x"}, "metrc", "unknown key"),
    ],
)
def test_bad_structure(tmp_path: Path, data: dict[str, Any], key: str, expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_curriculum(path)
    message = str(info.value)
    assert str(path) in message and f"`{key}`" in message and expected in message, message
    assert message.count("\n  - ") == 1, message


def test_every_problem_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "name": "c",
            "stages": [{"name": "a", "sampling": "x", **END}, {"name": "b", "cost_multiplier": -1}],
        },
    )
    with pytest.raises(ConfigError) as info:
        load_curriculum(path)
    message = str(info.value)
    assert "2 problems" in message
    assert "`stages.0.sampling`" in message and "`stages.1.cost_multiplier`" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("- a\n- b\n", "expected a mapping"), ("name: [unclosed\n", "not valid YAML")],
)
def test_not_a_curriculum_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_curriculum(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_curriculum(tmp_path / "nope.yaml")
