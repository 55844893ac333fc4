"""The cost model: four named parts, each charged in currency on a fill and each >= 0.

| part | formula (per fill) | source |
|---|---|---|
| commission | ``notional * commission_bps * 1e-4`` | broker fee |
| spread | ``|qty| * half_spread`` (the fill bar's quoted spread / 2, else ``half_spread_bps`` of price) | crossing the book |
| slippage | ``notional * slippage_bps * 1e-4`` | adverse move while the order works |
| impact | ``impact_coef * vol * sqrt(notional / ADV) * notional`` | square-root law (Almgren et al. 2005; Toth et al. 2011) |

``notional = |qty| * fill_price``; ``vol`` and ``ADV`` are the symbol's per-bar volatility and
mean dollar volume over the ``adv_window`` bars up to the decision bar. Every part is multiplied by ``cost_multiplier`` (stress
tests) and by the model's ``scale`` (a curriculum's cost level, 1 = the configured costs); spread
and slippage by their own multipliers too. Passive limit fills pay commission only: their price
already sits on the far side of the spread.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from multiagent.envs.config import CostConfig


class CostParts(NamedTuple):
    """Currency charged per slot on one step, (B, N) each."""

    commission: np.ndarray
    spread: np.ndarray
    slippage: np.ndarray
    impact: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.commission + self.spread + self.slippage + self.impact


class CostModel:
    """Vectorized costs; `bind` precomputes per-(symbol, bar) arrays so a fill costs a few ops."""

    def __init__(self, config: CostConfig, scale: float = 1.0) -> None:
        if not (np.isfinite(scale) and scale >= 0):
            raise ValueError(f"cost scale must be finite and >= 0, got {scale!r}")
        self.config = config
        self.scale = scale
        m = config.cost_multiplier * scale
        self._commission = config.commission_bps * 1e-4 * m
        self._slippage = config.slippage_bps * 1e-4 * config.slippage_multiplier * m
        self._spread_mult = config.spread_multiplier * m
        self._default_half_spread = config.half_spread_bps * 1e-4
        self._impact = config.impact_coef * m

    def bind(
        self, half_spread: np.ndarray, adv: np.ndarray, volatility: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-(symbol, bar) arrays from a market's (S, T) arrays, NaN meaning no data.

        Returns (half spread in price units, half spread as a fraction of price, impact factor);
        a fill's half spread is ``fixed + price * rate`` with the *fill* bar's values, its impact
        ``factor * notional ** 1.5`` with the *decision* bar's factor. Where the data has no
        spread the configured ``half_spread_bps`` is used; without volume the ``fallback_adv``
        (no impact when unset); without enough past returns the ``fallback_volatility``.
        """
        known = np.isfinite(half_spread)
        fixed = np.where(known, half_spread, 0.0) * self._spread_mult
        rate = np.where(known, 0.0, self._default_half_spread) * self._spread_mult
        fallback_adv = self.config.fallback_adv or np.inf
        liquidity = np.where(np.isfinite(adv) & (adv > 0), adv, fallback_adv)
        vol = np.where(np.isfinite(volatility), volatility, self.config.fallback_volatility)
        return fixed, rate, self._impact * vol / np.sqrt(liquidity)

    def parts(
        self,
        size: np.ndarray,
        price: np.ndarray,
        half_spread: np.ndarray,
        impact_factor: np.ndarray,
        passive: np.ndarray | None = None,
    ) -> CostParts:
        """Costs of trading ``size`` shares (>= 0) at ``price`` (see `bind` for the inputs).

        ``passive`` (limit) fills pay commission only.
        """
        notional = size * price
        commission = notional * self._commission
        spread = size * half_spread
        slippage = notional * self._slippage
        impact = impact_factor * notional * np.sqrt(notional)
        if passive is not None:
            spread = np.where(passive, 0.0, spread)
            slippage = np.where(passive, 0.0, slippage)
            impact = np.where(passive, 0.0, impact)
        return CostParts(commission, spread, slippage, impact)
