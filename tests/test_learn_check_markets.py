"""The learn check's markets are what its docs say: the mixed market plants momentum, mean
reversion and no signal across symbols, and turns on the features that can tell them apart."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from multiagent.data.synthetic import generate_market

SCRIPT = Path(__file__).parents[1] / "scripts" / "learn_check_symbols.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("learn_check_symbols", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("learn_check_symbols", module)
    spec.loader.exec_module(module)
    return module


def test_the_mixed_market_differs_by_symbol_and_carries_the_serial_features(tmp_path: Path) -> None:
    check = _script()
    config = check.run_config(0, "finetune", 2, str(tmp_path), "mixed", True)
    synthetic = config.data.synthetic
    assert synthetic is not None and config.env.n_symbols == synthetic.n_symbols == 8
    np.testing.assert_array_equal(synthetic.signs(), [1, -1, 0, 1, -1, 0, 1, -1])
    features = config.features.features
    assert features.autocorrelation and features.variance_ratio and features.hurst
    market = generate_market(synthetic)
    strength = market.signal_r2
    assert (strength[[2, 5]] == 0).all()
    # Strength drifts: a planted symbol's R2 changes over the sample.
    assert all(len(np.unique(strength[s])) > 1 for s in (0, 1, 3, 4, 6, 7))


def test_the_uniform_market_is_unchanged_and_a_long_window_gets_the_layers_to_read_it(
    tmp_path: Path,
) -> None:
    check = _script()
    uniform = check.run_config(0, "finetune", 2, str(tmp_path))
    assert uniform.data.synthetic is not None
    assert uniform.data.synthetic.signal_sign == "positive"
    assert uniform.features.features.autocorrelation is None
    long = check.run_config(0, "scratch", 2, str(tmp_path), "mixed", False, window=32)
    assert long.observation.window == 32 and long.encoder.receptive_field >= 32
    assert long.features.features.hurst is None
