"""Data as it comes from exchanges (issue 23): repeated columns, opt-in repair, reading only what
is asked (streamed CSV, column and symbol filters) and progress only for large files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from support.frames import ohlcv_frame, write

from multiagent.cli import data_progress
from multiagent.data import readers
from multiagent.data.errors import DataFixWarning, DataValidationError
from multiagent.data.loaders import load_panel
from multiagent.data.readers import open_table
from multiagent.data.validation_options import ValidationOptions

REPAIR = ValidationOptions(repair=True)


def _long(tmp_path: Path, extra: bool = False) -> Path:
    parts = [ohlcv_frame(seed=i).assign(symbol=s) for i, s in enumerate(["A", "B", "C"])]
    frame = pd.concat(parts).sort_values(["timestamp", "symbol"], kind="stable")
    if extra:
        frame["note"] = "x"
    fields = ["open", "high", "low", "close", "volume"]
    order = ["timestamp", "symbol", *fields, *(["note"] if extra else [])]
    return write(frame[order], tmp_path / "long.csv")


def test_wide_symbol_column_twice_is_refused(tmp_path: Path) -> None:
    a = ohlcv_frame()
    path = tmp_path / "wide.csv"
    path.write_text(
        "timestamp,AAA,BBB,AAA\n"
        + "".join(f"{t},{c},{c},{c}\n" for t, c in zip(a["timestamp"], a["close"], strict=True))
    )
    with pytest.raises(DataValidationError) as caught:
        load_panel(path)
    (problem,) = caught.value.problems
    assert problem.check == "duplicate_column" and problem.column == "AAA"
    assert str(path) in str(problem) and "AAA.1" not in str(caught.value)


def test_long_close_column_twice_is_refused(tmp_path: Path) -> None:
    frame = ohlcv_frame().assign(symbol="A")
    path = tmp_path / "long.csv"
    text = frame.to_csv(index=False).replace("close,", "close,close,", 1)
    lines = text.splitlines()
    lines[1:] = [
        f"{line.rsplit(',', 3)[0]},1.0,{','.join(line.rsplit(',', 3)[1:])}" for line in lines[1:]
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match="`close` appears more than once") as caught:
        load_panel(path)
    assert caught.value.problems[0].file == str(path)


def _exchange_file(tmp_path: Path) -> Path:
    frame = ohlcv_frame()
    frame.loc[10, ["open", "high", "low", "close", "volume"]] = 0.0  # placeholder row
    frame.loc[20, "open"] = frame.loc[20, "high"] * 1.1  # open above the high
    same = frame.iloc[[30]]
    other = frame.iloc[[40]].copy()
    other["close"] = other["low"]  # same day, another bar
    frame = pd.concat([frame.iloc[:31], same, frame.iloc[31:41], other, frame.iloc[41:]])
    return write(frame.reset_index(drop=True), tmp_path / "X.csv")


def test_exchange_artifacts_are_errors_that_name_repair(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as caught:
        load_panel(_exchange_file(tmp_path))
    checks = {p.check for p in caught.value.problems}
    assert checks == {"nonpositive_price", "open_outside_range"}
    assert all("--repair" in p.hint for p in caught.value.problems)
    clean = ohlcv_frame()
    doubled = pd.concat([clean.iloc[:5], clean.iloc[[4]], clean.iloc[5:]])
    with pytest.raises(DataValidationError, match="--repair"):
        load_panel(write(doubled, tmp_path / "D.csv"))


def test_repair_makes_missing_bars_reported_row_by_row(tmp_path: Path) -> None:
    path = _exchange_file(tmp_path)
    with pytest.warns(DataFixWarning, match="repaired 4 rows"):
        panel = load_panel(path, options=REPAIR)
    days = set(pd.DatetimeIndex(panel.timestamps).strftime("%Y-%m-%d"))
    frame = ohlcv_frame()
    assert frame.loc[10, "timestamp"] not in days and frame.loc[20, "timestamp"] not in days
    assert frame.loc[30, "timestamp"] in days  # identical duplicate: kept once
    assert frame.loc[40, "timestamp"] not in days  # conflicting duplicate: missing
    assert panel.n_bars == 57
    rows = [n for n in panel.notes if "symbol X, row" in n]
    assert len(rows) == 4
    assert any("row 11" in n and "close 0 is not a positive price" in n for n in rows)
    assert any("row 21" in n and "open" in n and "outside" in n for n in rows)
    assert any("row 32" in n and "repeats row 31 exactly" in n for n in rows)
    assert any("rows 42, 43 give different bars" in n for n in rows)
    assert all(n.startswith(str(path)) for n in rows)


def test_repair_is_off_by_default_and_in_the_run_config() -> None:
    from multiagent.config.run import DataConfig

    assert ValidationOptions().repair is False
    config = DataConfig.model_validate({"paths": ["x.csv"], "validation": {"repair": True}})
    assert config.validation.repair is True


def test_stream_and_pandas_paths_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _long(tmp_path, extra=True)
    streamed = load_panel(path)
    picked = load_panel(path, symbols=["C", "A"])
    monkeypatch.setattr(readers, "ARROW_SUFFIXES", {})  # every CSV through pandas
    read = load_panel(path)
    assert streamed.fingerprint() == read.fingerprint() and streamed.notes == read.notes
    assert picked.fingerprint() == load_panel(path, symbols=["C", "A"]).fingerprint()
    assert picked.symbols == ("C", "A")


def test_only_asked_symbols_and_known_columns_are_parsed(tmp_path: Path) -> None:
    path = _long(tmp_path, extra=True)
    table = open_table(path)
    columns = [c for c in table.header if c != "note"]
    split = table.read_split(columns, "symbol", {"B"})
    assert set(split.parts) == {"B"} and split.seen == {"A", "B", "C"}
    part = split.parts["B"]
    assert isinstance(part, readers.pa.Table)  # streamed, not read by pandas
    assert "note" not in part.column_names and "symbol" not in part.column_names
    np.testing.assert_array_equal(part.column("_row").to_numpy(), np.arange(1, 180, 3))


def test_unknown_symbol_lists_those_not_read(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"unknown symbol D; \(available: A, B, C\)"):
        load_panel(_long(tmp_path), symbols=["D"])


def test_a_value_the_stream_cannot_type_falls_back_to_pandas(tmp_path: Path) -> None:
    frame = ohlcv_frame().assign(symbol="A").astype({"close": object})
    frame.loc[59, "close"] = "n.a."
    with pytest.raises(DataValidationError) as caught:
        load_panel(write(frame, tmp_path / "long.csv"))
    assert caught.value.problems[0].check == "not_numeric"
    assert caught.value.problems[0].rows == (60, 60)


def test_progress_is_offered_every_streamed_file_and_shown_only_when_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _long(tmp_path)
    seen: list[tuple[str, int]] = []
    advanced: list[int] = []

    def hook(file: str, size: int) -> readers.Callable[[int], None]:
        seen.append((file, size))
        return advanced.append

    load_panel(path, progress=hook)
    assert seen == [(str(path), path.stat().st_size)] and sum(advanced) == seen[0][1]
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with data_progress.read_progress(console) as show:
        load_panel(path, progress=show)
    assert out.getvalue() == ""  # a small file: no bar
    monkeypatch.setattr(data_progress, "LARGE_FILE_BYTES", 0)
    with data_progress.read_progress(console) as show:
        load_panel(path, progress=show)
    assert "reading" in out.getvalue()
