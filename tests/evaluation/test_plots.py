"""The report's plots read as a quant reads them (issue 23): structure, not pixels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from multiagent.evaluation.plots import (
    MAX_WEIGHT_ROWS,
    REFERENCE_ZORDER,
    actions_figure,
    equity_figure,
    weight_rows,
    weights_figure,
)

DATES = pd.date_range("2020-01-01", periods=120, freq="B")


@pytest.fixture(autouse=True)
def _close_figures() -> object:
    yield
    plt.close("all")


def churning_weights(symbols: int, shorts: bool = False) -> np.ndarray:
    """Each bar a fresh allocation: the daily churn that made the old stack a sawtooth."""
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.ones(symbols), size=len(DATES)).T
    return weights - weights.mean() if shorts else weights


def outside(figure: Figure, axis: Axes) -> bool:
    """The axis' legend and its data area do not overlap (display coordinates)."""
    figure.canvas.draw()
    legend = axis.get_legend()
    assert legend is not None
    box = legend.get_window_extent()
    return not box.overlaps(axis.get_window_extent())


def test_weights_are_a_heatmap_of_symbols_over_time() -> None:
    labels = ["AAA", "BBB", "CCC", "DDD"]
    weights = churning_weights(4)
    weights[2] += 0.5  # CCC held most: the top row
    figure = weights_figure(DATES, labels, weights, "independent")
    axis = figure.axes[0]
    (image,) = axis.images
    assert image.get_array().shape == (4, len(DATES))
    assert axis.get_yticklabels()[0].get_text() == "CCC"
    assert not axis.collections  # no stackplot left
    assert image.get_cmap().name == "Blues" and image.norm.vmin == 0.0
    assert len(figure.axes) == 2  # the colour bar says what a colour means


def test_weights_with_shorts_use_a_scale_symmetric_about_zero() -> None:
    figure = weights_figure(DATES, ["A", "B", "C"], churning_weights(3, shorts=True), "x")
    (image,) = figure.axes[0].images
    assert image.get_cmap().name == "RdBu"
    assert image.norm.vmin == -image.norm.vmax


def test_many_symbols_share_an_other_row() -> None:
    count = MAX_WEIGHT_ROWS + 12
    labels = [f"S{i:02d}" for i in range(count)]
    weights = churning_weights(count)
    names, rows = weight_rows(labels, weights)
    assert len(names) == MAX_WEIGHT_ROWS == rows.shape[0]
    assert names[-1] == "other (13)"
    np.testing.assert_allclose(rows.sum(axis=0), weights.sum(axis=0))
    means = np.abs(rows[:-1]).mean(axis=1)
    assert (np.diff(means) <= 0).all()  # most held first


def test_action_legend_sits_beside_the_stack() -> None:
    shares = pd.DataFrame(
        np.tile([0.5, 0.3, 0.2], (len(DATES), 1)), index=DATES, columns=["hold", "buy", "sell"]
    )
    figure = actions_figure(shares, "independent", 20)
    axis = figure.axes[0]
    assert outside(figure, axis)
    texts = [t.get_text() for t in axis.get_legend().get_texts()]
    assert texts == ["hold", "buy", "sell"]


def test_cash_is_drawn_above_the_reference_line() -> None:
    flat = np.ones(len(DATES))
    rising = np.linspace(1.0, 1.2, len(DATES))
    curves = [("independent", rising), ("equal_weight", rising * 0.99), ("cash", flat)]
    figure = equity_figure(DATES, curves, {"independent"}, "test")
    axis = figure.axes[0]
    lines = {line.get_label(): line for line in axis.get_lines()}
    (reference,) = [line for label, line in lines.items() if label.startswith("_")]
    cash = lines["cash"]
    assert reference.get_zorder() == REFERENCE_ZORDER < cash.get_zorder()
    assert cash.get_linestyle() != reference.get_linestyle()
    assert cash.get_linewidth() > reference.get_linewidth()
    assert lines["independent"].get_zorder() > cash.get_zorder()
    assert outside(figure, axis)
