"""The three layouts, intraday and time zones, close-only data, bundled data, fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.frames import ohlcv_frame, write

from multiagent.data.bundled import BUNDLED, license_text, load_bundled
from multiagent.data.errors import DataValidationError
from multiagent.data.loaders import load_panel
from multiagent.data.validation_options import ValidationOptions


def test_per_symbol_nested_parquet_layout(tmp_path: Path) -> None:
    for i, symbol in enumerate(["AAPL", "MSFT"]):
        frame = ohlcv_frame(seed=i)
        frame["timestamp"] = pd.date_range("2021-01-04 14:30", periods=60, freq="h", tz="UTC")
        write(frame, tmp_path / "historical" / symbol / "1Hour" / "data.parquet")
    panel = load_panel(tmp_path / "historical")
    assert panel.symbols == ("AAPL", "MSFT")
    assert panel.bar == pd.Timedelta("1h") and panel.timezone == "UTC"
    assert set(panel.fields) == {"open", "high", "low", "close", "volume"}


def test_long_and_wide_layouts_agree(tmp_path: Path) -> None:
    a, b = ohlcv_frame(seed=1), ohlcv_frame(seed=2)
    long = pd.concat([a.assign(symbol="A"), b.assign(symbol="B")])
    wide = pd.DataFrame({"Date": a["timestamp"], "A": a["close"], "B": b["close"]})
    from_long = load_panel(write(long, tmp_path / "long.csv"))
    from_wide = load_panel(write(wide, tmp_path / "wide.csv"))
    assert from_long.symbols == from_wide.symbols == ("A", "B")
    np.testing.assert_array_equal(from_long.close, from_wide.close)
    assert set(from_wide.fields) == {"close"}


def test_wide_file_with_late_listing(tmp_path: Path) -> None:
    a, b = ohlcv_frame(seed=1), ohlcv_frame(seed=2)
    b_close = b["close"].copy()
    b_close[:10] = np.nan
    wide = pd.DataFrame({"timestamp": a["timestamp"], "A": a["close"], "B": b_close})
    panel = load_panel(write(wide, tmp_path / "w.csv"))
    assert panel.observed[1, :10].sum() == 0 and panel.observed[1, 10:].all()
    assert any("B trades only from row 11" in n for n in panel.notes)


def test_interior_blank_in_wide_file_is_a_problem(tmp_path: Path) -> None:
    a = ohlcv_frame()
    close = a["close"].copy()
    close[20] = np.nan
    with pytest.raises(DataValidationError) as caught:
        load_panel(
            write(pd.DataFrame({"timestamp": a["timestamp"], "A": close}), tmp_path / "w.csv")
        )
    assert caught.value.problems[0].check == "nan"
    assert caught.value.problems[0].rows == (21, 21)


def test_adjusted_close_rescales_ohlc(tmp_path: Path) -> None:
    frame = ohlcv_frame()
    frame["Adj Close"] = frame["close"] / 2
    panel = load_panel(write(frame, tmp_path / "A.csv"))
    np.testing.assert_allclose(panel.close[0], frame["close"] / 2)
    np.testing.assert_allclose(panel.fields["high"][0], frame["high"] / 2)


def test_symbols_align_on_union_of_timestamps(tmp_path: Path) -> None:
    write(ohlcv_frame(), tmp_path / "A.csv")
    shorter = ohlcv_frame(seed=3).iloc[5:50]
    write(shorter, tmp_path / "B.csv")
    panel = load_panel(tmp_path)
    assert panel.n_bars == 60
    assert panel.observed[1].sum() == 45 and not panel.observed[1, :5].any()


def test_start_end_and_symbol_selection(tmp_path: Path) -> None:
    write(ohlcv_frame(), tmp_path / "A.csv")
    write(ohlcv_frame(seed=1), tmp_path / "B.csv")
    panel = load_panel(tmp_path, symbols=["B"], start="2021-02-01", end="2021-02-28")
    assert panel.symbols == ("B",)
    assert pd.Timestamp(panel.timestamps[0]) >= pd.Timestamp("2021-02-01")
    assert pd.Timestamp(panel.timestamps[-1]) <= pd.Timestamp("2021-02-28")


def test_local_time_zone_with_daylight_saving_is_accepted(tmp_path: Path) -> None:
    times = pd.date_range("2021-03-10 10:00", periods=60, freq="D", tz="America/New_York")
    frame = ohlcv_frame()
    frame["timestamp"] = [t.isoformat() for t in times]
    panel = load_panel(write(frame, tmp_path / "A.csv"))
    assert panel.timezone == "-04:00/-05:00"
    assert pd.Timestamp(panel.timestamps[0]) == pd.Timestamp("2021-03-10 15:00")


@pytest.mark.parametrize("name", [n for n in BUNDLED if n != "sp500_raw"])
def test_bundled_datasets_load_and_validate(name: str) -> None:
    panel = load_bundled(name)
    assert panel.n_bars > 1000 and panel.n_symbols >= 1
    assert np.isfinite(panel.close[panel.observed]).all()


def test_bundled_default_content() -> None:
    panel = load_bundled("sp500")
    assert panel.n_symbols == 20 and "AAPL" in panel.symbols
    assert str(pd.Timestamp(panel.timestamps[0]).date()) == "1993-01-04"
    assert str(pd.Timestamp(panel.timestamps[-1]).date()) == "2022-12-28"
    assert "BSD 3-Clause" in license_text()


def test_raw_bundled_sp500_is_rejected_for_its_real_artifacts() -> None:
    with pytest.raises(DataValidationError) as caught:
        load_bundled("sp500_raw")
    assert {p.check for p in caught.value.problems} == {"jump", "stale"}
    assert {p.symbol for p in caught.value.problems} == {"RRC"}


def test_unknown_bundled_dataset() -> None:
    with pytest.raises(DataValidationError, match="no bundled dataset"):
        load_bundled("nasdaq100")


def test_fingerprint_is_stable_and_sensitive(tmp_path: Path) -> None:
    path = write(ohlcv_frame(), tmp_path / "A.csv")
    first, second = load_panel(path).fingerprint(), load_panel(path).fingerprint()
    assert first == second and len(first) == 64
    frame = ohlcv_frame()
    frame.loc[30, "close"] *= 1.0000001
    frame.loc[30, "high"] = max(frame.loc[30, "high"], frame.loc[30, "close"])
    assert load_panel(write(frame, tmp_path / "B" / "A.csv")).fingerprint() != first


def test_non_iso_dates_are_read_with_a_reported_guess(tmp_path: Path) -> None:
    frame = ohlcv_frame()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.strftime("%m/%d/%Y")
    panel = load_panel(write(frame, tmp_path / "A.csv"))
    assert any("'%m/%d/%Y' guessed" in note for note in panel.notes)
    day_first = ohlcv_frame()
    day_first["timestamp"] = pd.to_datetime(day_first["timestamp"]).dt.strftime("%d.%m.%Y")
    with pytest.raises(DataValidationError, match="format guessed from row 1"):
        load_panel(write(day_first, tmp_path / "B.csv"))
    explicit = load_panel(
        tmp_path / "B.csv", options=ValidationOptions(timestamp_format="%d.%m.%Y")
    )
    assert explicit.n_bars == 60


def test_semicolon_csv_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "A.csv"
    ohlcv_frame().to_csv(path, index=False, sep=";")
    assert load_panel(path).n_bars == 60
