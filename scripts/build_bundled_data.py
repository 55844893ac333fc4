"""Rebuild multiagent/data/bundled_data/ from the published wheels (provenance of the bundled data).

Run once by maintainers, never at run time: `python scripts/build_bundled_data.py`. It downloads
skfolio, arch and gym-anytrading wheels with pip (no install), and writes canonical CSVs:

- sp500_prices.csv.gz, sp500_index.csv.gz: skfolio's files, unchanged.
- us_indices_ohlcv.csv.gz: arch's sp500 and nasdaq daily OHLCV, as long format (SPX, NDX);
  `Close` is kept (equal to `Adj Close` for these indices).
- vix.csv.gz: arch's VIX close; rows whose value is "." (market holidays) are dropped.
- eurusd_1h.csv.gz: gym-anytrading's EUR/USD hourly ask bars, timestamps rewritten to ISO UTC.
- LICENSES.md: the three license texts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

TARGET = Path(__file__).resolve().parents[1] / "multiagent" / "data" / "bundled_data"
GZIP = {"method": "gzip", "mtime": 0}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for package in ("skfolio", "arch==8.0.0", "gym-anytrading"):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, package],
                check=True,
            )
        for wheel in work.glob("*.whl"):
            zipfile.ZipFile(wheel).extractall(work)
        skfolio = work / "skfolio" / "datasets" / "data"
        shutil.copy(skfolio / "sp500_dataset.csv.gz", TARGET / "sp500_prices.csv.gz")
        shutil.copy(skfolio / "sp500_index.csv.gz", TARGET / "sp500_index.csv.gz")
        frames = []
        for name, symbol in (("sp500", "SPX"), ("nasdaq", "NDX")):
            raw = pd.read_csv(work / "arch" / "data" / name / f"{name}.csv.gz")
            raw["timestamp"] = pd.to_datetime(raw["Date"], format="%m/%d/%Y").dt.strftime(
                "%Y-%m-%d"
            )
            raw["symbol"] = symbol
            frames.append(raw[["timestamp", "symbol", "Open", "High", "Low", "Close", "Volume"]])
        long = pd.concat(frames)
        long.columns = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
        long.to_csv(TARGET / "us_indices_ohlcv.csv.gz", index=False, compression=GZIP)
        vix = pd.read_csv(work / "arch" / "data" / "vix" / "vix.csv.gz")
        vix["timestamp"] = pd.to_datetime(vix["Date"], format="%m/%d/%Y").dt.strftime("%Y-%m-%d")
        vix = vix[vix["vix"].astype(str) != "."]
        vix[["timestamp", "vix"]].to_csv(TARGET / "vix.csv.gz", index=False, compression=GZIP)
        fx = pd.read_csv(work / "gym_anytrading" / "datasets" / "data" / "FOREX_EURUSD_1H_ASK.csv")
        fx["timestamp"] = pd.to_datetime(fx["Time"], format="%d.%m.%Y %H:%M:%S.%f").dt.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        fx = fx[["timestamp", "Open", "High", "Low", "Close", "Volume"]]
        fx.columns = ["timestamp", "open", "high", "low", "close", "volume"]
        fx.to_csv(TARGET / "eurusd_1h.csv.gz", index=False, compression=GZIP)
        licenses = {
            "skfolio (sp500_prices.csv.gz, sp500_index.csv.gz)": next(
                work.glob("skfolio-*/licenses/LICENSE")
            ),
            "arch (us_indices_ohlcv.csv.gz, vix.csv.gz)": next(
                work.glob("arch-*/licenses/LICENSE.md")
            ),
            "gym-anytrading (eurusd_1h.csv.gz)": next(work.glob("gym_anytrading-*/LICENSE")),
        }
        text = ["# Bundled data licenses", ""]
        for title, path in licenses.items():
            text += [f"## {title}", "", path.read_text(), ""]
        (TARGET / "LICENSES.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
