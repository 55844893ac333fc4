"""One malformed fixture per validation branch: each gives one clear, located problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.frames import ohlcv_frame, write

from multiagent.data.errors import DataFixWarning, DataValidationError
from multiagent.data.loaders import load_panel
from multiagent.data.validation_options import ValidationOptions

Mutator = Callable[[pd.DataFrame], pd.DataFrame]


def _set(column: str, rows: list[int], value: object) -> Mutator:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object}) if isinstance(value, str) else frame
        frame.loc[rows, column] = value
        return frame

    return mutate


def _drop(column: str) -> Mutator:
    return lambda f: f.drop(columns=[column])


def _swap_rows(a: int, b: int) -> Mutator:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        order = list(range(len(frame)))
        order[a], order[b] = order[b], order[a]
        return frame.iloc[order].reset_index(drop=True)

    return mutate


def _duplicate_row(i: int) -> Mutator:
    return lambda f: pd.concat([f.iloc[: i + 1], f.iloc[i : i + 1], f.iloc[i + 1 :]]).reset_index(
        drop=True
    )


def _jump(i: int) -> Mutator:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        for column in ("open", "high", "low", "close"):
            frame.loc[i:, column] = frame.loc[i:, column] / 3  # an unadjusted 3:1 split
        return frame

    return mutate


def _stale(start: int, length: int) -> Mutator:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        value = frame.loc[start, "close"]
        frame.loc[start : start + length - 1, "close"] = value
        frame.loc[start : start + length - 1, ["open", "high", "low"]] = value
        return frame

    return mutate


def _gap(i: int) -> Mutator:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        times = pd.to_datetime(frame["timestamp"])
        times[i:] = times[i:] + pd.Timedelta(days=30)
        frame["timestamp"] = times.dt.strftime("%Y-%m-%d")
        return frame

    return mutate


def _intraday_rows(i: int) -> Mutator:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame["timestamp"] = frame["timestamp"].astype(object)
        frame.loc[i, "timestamp"] = str(
            pd.Timestamp(frame.loc[i - 1, "timestamp"]) + pd.Timedelta("1h")
        )
        return frame

    return mutate


def _mixed_tz(frame: pd.DataFrame) -> pd.DataFrame:
    stamps = [f"{t}T16:00:00" for t in frame["timestamp"]]
    stamps[5:] = [f"{s}Z" for s in stamps[5:]]
    frame["timestamp"] = stamps
    return frame


def _many_offsets(frame: pd.DataFrame) -> pd.DataFrame:
    offsets = ["+00:00", "+09:00", "-05:00"]
    frame["timestamp"] = [f"{t}T16:00:00{offsets[i % 3]}" for i, t in enumerate(frame["timestamp"])]
    return frame


CASES: dict[str, tuple[Mutator, str, str | None, tuple[int, int] | None]] = {
    # name: (mutation, expected check, expected column, expected 1-based rows)
    "missing close": (_drop("close"), "missing_column", "close", None),
    "missing timestamp": (_drop("timestamp"), "missing_column", "timestamp", None),
    "nan close": (_set("close", [9, 10, 11], np.nan), "nan", "close", (10, 12)),
    "inf volume": (_set("volume", [3], np.inf), "inf", "volume", (4, 4)),
    "text in price": (_set("high", [7], "abc"), "not_numeric", "high", (8, 8)),
    "zero price": (_set("low", [4], 0.0), "nonpositive_price", "low", (5, 5)),
    "negative price": (_set("open", [2], -1.0), "nonpositive_price", "open", (3, 3)),
    "negative volume": (_set("volume", [6], -5.0), "negative_volume", "volume", (7, 7)),
    "high below low": (_set("high", [8], 1.0), "high_below_low", "high", (9, 9)),
    "close above high": (_set("close", [12], 1e4), "close_outside_range", "close", (13, 13)),
    "open below low": (_set("open", [15], 1e-3), "open_outside_range", "open", (16, 16)),
    "duplicate timestamps": (_duplicate_row(20), "duplicate_timestamps", "timestamp", (21, 21)),
    "unsorted": (_swap_rows(30, 31), "unsorted", "timestamp", (32, 32)),
    "bad timestamp": (_set("timestamp", [5], "2021-13-45"), "bad_timestamp", "timestamp", (6, 6)),
    "naive and aware": (_mixed_tz, "mixed_timezones", "timestamp", (1, 5)),
    "three offsets": (_many_offsets, "mixed_timezones", "timestamp", None),
    "mixed frequency": (_intraday_rows(25), "mixed_frequency", "timestamp", None),
    "gap": (_gap(40), "gap", "timestamp", (41, 41)),
    "unadjusted split": (_jump(33), "jump", "close", (34, 34)),
    "stale feed": (_stale(10, 30), "stale", "close", (11, 40)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_malformed_file_gives_one_located_problem(case: str, tmp_path: Path) -> None:
    mutate, check, column, rows = CASES[case]
    path = write(mutate(ohlcv_frame()), tmp_path / "AAPL.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel(path)
    problems = caught.value.problems
    assert [p.check for p in problems] == [check], str(caught.value)
    problem = problems[0]
    assert problem.file == str(path)
    assert problem.symbol == "AAPL"
    if column is not None:
        assert problem.column == column
    if rows is not None:
        assert problem.rows == rows
    assert problem.hint, "every problem says what to do"
    assert str(path) in str(caught.value)


def test_all_problems_of_all_files_are_reported_together(tmp_path: Path) -> None:
    write(CASES["nan close"][0](ohlcv_frame()), tmp_path / "A.csv")
    write(CASES["high below low"][0](ohlcv_frame()), tmp_path / "B.csv")
    write(ohlcv_frame(), tmp_path / "C.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path)
    assert {(p.symbol, p.check) for p in caught.value.problems} == {
        ("A", "nan"),
        ("B", "high_below_low"),
    }


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text("timestamp,close\n")
    with pytest.raises(DataValidationError, match="no data rows") as caught:
        load_panel(path)
    assert caught.value.problems[0].check == "empty"


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_bytes(b"")
    with pytest.raises(DataValidationError) as caught:
        load_panel(path)
    assert caught.value.problems[0].check == "empty"


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "X.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(DataValidationError) as caught:
        load_panel(path)
    assert caught.value.problems[0].check == "unreadable"
    assert caught.value.problems[0].file == str(path)


def test_missing_file_and_unsupported_format(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path / "nope.csv")
    assert caught.value.problems[0].check == "not_found"
    odd = tmp_path / "X.xlsx"
    odd.write_text("x")
    with pytest.raises(DataValidationError) as caught:
        load_panel(odd)
    assert caught.value.problems[0].check == "unsupported_format"


def test_unknown_symbols_suggest_close_matches(tmp_path: Path) -> None:
    write(ohlcv_frame(), tmp_path / "AAPL.csv")
    write(ohlcv_frame(seed=1), tmp_path / "MSFT.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path, symbols=["AAPL", "APPL"])
    problem = caught.value.problems[0]
    assert problem.check == "unknown_symbol"
    assert "APPL" in problem.message and "AAPL" in problem.hint


def test_mixed_timezones_across_files(tmp_path: Path) -> None:
    aware = ohlcv_frame()
    aware["timestamp"] = [f"{t}T21:00:00Z" for t in aware["timestamp"]]
    write(aware, tmp_path / "A.csv")
    write(ohlcv_frame(), tmp_path / "B.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path)
    assert caught.value.problems[0].check == "mixed_timezones"


def test_mixed_frequency_across_symbols(tmp_path: Path) -> None:
    write(ohlcv_frame(), tmp_path / "DAILY.csv")
    hourly = ohlcv_frame(freq="h")
    hourly["timestamp"] = pd.date_range("2021-01-04", periods=len(hourly), freq="h").astype(str)
    write(hourly, tmp_path / "HOURLY.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path)
    assert caught.value.problems[0].check == "mixed_frequency"
    assert "DAILY" in caught.value.problems[0].message


def test_duplicate_symbol_across_files(tmp_path: Path) -> None:
    long = ohlcv_frame().assign(symbol="AAPL")
    write(long, tmp_path / "a.csv")
    write(long, tmp_path / "b.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel([tmp_path / "a.csv", tmp_path / "b.csv"], layout="long")
    assert caught.value.problems[0].check == "duplicate_symbol"


def test_long_file_without_symbols_in_some_rows(tmp_path: Path) -> None:
    long = ohlcv_frame().assign(symbol="AAPL")
    long.loc[3, "symbol"] = None
    with pytest.raises(DataValidationError) as caught:
        load_panel(write(long, tmp_path / "long.csv"))
    assert caught.value.problems[0].check == "missing_symbol"
    assert caught.value.problems[0].rows == (4, 4)


def test_ambiguous_columns(tmp_path: Path) -> None:
    frame = ohlcv_frame().assign(Price=1.0)
    with pytest.raises(DataValidationError) as caught:
        load_panel(write(frame, tmp_path / "A.csv"))
    assert caught.value.problems[0].check == "ambiguous_column"


def test_numeric_timestamps_are_rejected(tmp_path: Path) -> None:
    frame = ohlcv_frame()
    frame["timestamp"] = np.arange(len(frame))
    with pytest.raises(DataValidationError) as caught:
        load_panel(write(frame, tmp_path / "A.csv"))
    assert caught.value.problems[0].check == "bad_timestamp"


def test_folder_with_ambiguous_and_missing_frequencies(tmp_path: Path) -> None:
    write(ohlcv_frame(), tmp_path / "AAPL" / "1Day" / "data.csv")
    write(ohlcv_frame(), tmp_path / "AAPL" / "1Hour" / "data.csv")
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path)
    assert caught.value.problems[0].check == "ambiguous_frequency"
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path, frequency="5Min")
    assert caught.value.problems[0].check == "missing_frequency"
    assert load_panel(tmp_path, frequency="1Day").symbols == ("AAPL",)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as caught:
        load_panel(tmp_path)
    assert caught.value.problems[0].check == "empty"


def test_wide_file_without_price_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"date": ["2021-01-04", "2021-01-05"]})
    with pytest.raises(DataValidationError) as caught:
        load_panel(write(frame, tmp_path / "wide.csv"), layout="wide")
    assert caught.value.problems[0].check == "missing_column"


def test_auto_fixes_only_when_asked_and_reported(tmp_path: Path) -> None:
    messy = _duplicate_row(20)(_swap_rows(30, 31)(ohlcv_frame()))
    path = write(messy, tmp_path / "A.csv")
    with pytest.raises(DataValidationError):
        load_panel(path)
    options = ValidationOptions(sort=True, drop_duplicates=True)
    with pytest.warns(DataFixWarning, match="sorted 1 out-of-order rows"):
        panel = load_panel(path, options=options)
    assert panel.n_bars == 60
    assert np.all(np.diff(panel.timestamps) > np.timedelta64(0))
    assert any("dropped 1 rows" in note for note in panel.notes)


def test_thresholds_can_be_relaxed(tmp_path: Path) -> None:
    path = write(_jump(33)(_gap(40)(ohlcv_frame())), tmp_path / "A.csv")
    options = ValidationOptions(max_gap="40D", max_abs_log_return=None)
    assert load_panel(path, options=options).n_bars == 60


def test_bad_option_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        ValidationOptions(max_gap="soon")
    with pytest.raises(ValueError):
        ValidationOptions(max_stale_bars=0)
