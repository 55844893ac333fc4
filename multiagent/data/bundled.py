"""Datasets shipped inside the package: real market data that works with no network.

| name            | layout | bars              | symbols                     | fields      | source, license |
|-----------------|--------|-------------------|-----------------------------|-------------|-----------------|
| `sp500`         | wide   | daily, 1993-2022  | 20 S&P 500 stocks           | close (adj.)| skfolio, BSD-3  |
| `sp500_raw`     | wide   | daily, 1990-2022  | same, uncurated             | close (adj.)| skfolio, BSD-3  |
| `sp500_index`   | wide   | daily, 1990-2022  | SP500                       | close       | skfolio, BSD-3  |
| `us_indices`    | long   | daily, 1999-2018  | SPX, NDX                    | OHLCV       | arch, NCSA      |
| `eurusd_1h`     | single | hourly, 2017      | EURUSD                      | OHLCV (ask) | gym-anytrading, MIT |
| `vix`           | exogenous series | daily, 2014-2018 | market-wide `vix`   | value       | arch, NCSA      |

`sp500` starts in 1993 because the raw file's RRC prices are stale for up to 68 sessions in
1990-1992 and jump by exactly x3 on 1990-04-10; `sp500_raw` keeps them, and validation rejects
it (which is the point of validation). License texts: ``bundled_data/LICENSES.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from multiagent.data.errors import DataProblem, DataValidationError

if TYPE_CHECKING:  # loading imports pandas and pyarrow; listing the datasets must not
    from multiagent.data.loaders import Layout
    from multiagent.data.panel import MarketPanel
    from multiagent.data.validation_options import ValidationOptions


@dataclass(frozen=True)
class BundledDataset:
    file: str
    layout: Layout
    description: str
    start: str | None = None
    curation: str | None = None
    symbol: str | None = None
    """Symbol name of a single-symbol file (otherwise the file names its symbols)."""


BUNDLED: dict[str, BundledDataset] = {
    "sp500": BundledDataset(
        "sp500_prices.csv.gz",
        "wide",
        "20 S&P 500 stocks, daily adjusted close (skfolio, BSD-3)",
        start="1993-01-01",
        curation="starts 1993-01-01: RRC is stale and has an x3 jump in 1990-1992 (see sp500_raw)",
    ),
    "sp500_raw": BundledDataset(
        "sp500_prices.csv.gz", "wide", "the sp500 file uncurated, 1990-2022 (fails validation)"
    ),
    "sp500_index": BundledDataset(
        "sp500_index.csv.gz", "wide", "S&P 500 index, daily close, 1990-2022 (skfolio, BSD-3)"
    ),
    "us_indices": BundledDataset(
        "us_indices_ohlcv.csv.gz", "long", "S&P 500 and NASDAQ indices, daily OHLCV (arch, NCSA)"
    ),
    "eurusd_1h": BundledDataset(
        "eurusd_1h.csv.gz",
        "per_symbol",
        "EUR/USD hourly ask OHLCV, 2017 (gym-anytrading, MIT)",
        symbol="EURUSD",
    ),
}
EXOGENOUS = {"vix": "vix.csv.gz"}
"""Bundled exogenous series (timestamp + value columns), for `multiagent.data.exogenous`."""


def bundled_path(file: str) -> Path:
    return Path(str(resources.files("multiagent.data") / "bundled_data" / file))


def license_text() -> str:
    return bundled_path("LICENSES.md").read_text(encoding="utf-8")


def load_bundled(
    name: str = "sp500",
    *,
    symbols: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    options: ValidationOptions | None = None,
) -> MarketPanel:
    """Load a bundled dataset through the same loaders and validation as user data."""
    from multiagent.data.loaders import load_panel

    if name not in BUNDLED:
        raise DataValidationError(
            [
                DataProblem(
                    "unknown_dataset",
                    f"no bundled dataset named {name!r}",
                    f"choose one of {', '.join(BUNDLED)}",
                )
            ]
        )
    spec = BUNDLED[name]
    path = bundled_path(spec.file)
    panel = load_panel(
        path,
        layout=spec.layout,
        symbols=symbols,
        start=start or spec.start,
        end=end,
        options=options,
    )
    notes = (*panel.notes, *([f"bundled {name}: {spec.curation}"] if spec.curation else []))
    return replace(
        panel,
        symbols=(spec.symbol,) if spec.symbol else panel.symbols,
        source=f"bundled:{name}",
        notes=notes,
    )
