"""The cost model: four named parts, each charged in currency on a fill and each >= 0.

| part | formula (per fill) | source |
|---|---|---|
| commission | ``notional * commission_bps * 1e-4`` | broker fee |
| spread | ``|qty| * half_spread`` (data's quoted spread / 2, else ``half_spread_bps`` of price) | crossing the book |
| slippage | ``notional * slippage_bps * 1e-4`` | adverse move while the order works |
| impact | ``impact_coef * vol * sqrt(notional / ADV) * notional`` | square-root law (Almgren et al. 2005; Toth et al. 2011) |

``notional = |qty| * fill_price``; ``vol`` and ``ADV`` are the symbol's per-bar volatility and
mean dollar volume over the ``adv_window`` bars up to the decision bar. Every part is multiplied by ``cost_multiplier`` (stress
tests); spread and slippage by their own multipliers too. Passive limit fills pay commission only:
their price already sits on the far side of the spread.
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
    """Vectorized costs for fills of any shape."""

    def __init__(self, config: CostConfig) -> None:
        self.config = config
        m = config.cost_multiplier
        self._commission = config.commission_bps * 1e-4 * m
        self._slippage = config.slippage_bps * 1e-4 * config.slippage_multiplier * m
        self._spread_mult = config.spread_multiplier * m
        self._default_half_spread = config.half_spread_bps * 1e-4
        self._impact = config.impact_coef * m
        self._fallback_adv = config.fallback_adv
        self._fallback_vol = config.fallback_volatility

    def parts(
        self,
        traded: np.ndarray,
        price: np.ndarray,
        half_spread: np.ndarray,
        adv: np.ndarray,
        volatility: np.ndarray,
        passive: np.ndarray | None = None,
    ) -> CostParts:
        """Costs of trading ``|traded|`` shares at ``price``; ``passive`` fills pay commission only.

        NaN in ``half_spread``, ``adv`` or ``volatility`` means no data: the configured half spread,
        ``fallback_adv`` (no impact when unset) and ``fallback_volatility`` are used there.
        """
        size = np.abs(traded)
        notional = size * price
        commission = notional * self._commission
        half = np.where(half_spread == half_spread, half_spread, price * self._default_half_spread)
        spread = size * half * self._spread_mult
        slippage = notional * self._slippage
        if self._impact > 0:
            liquidity = np.where(adv > 0, adv, self._fallback_adv or np.inf)
            vol = np.where(volatility == volatility, volatility, self._fallback_vol)
            impact = self._impact * vol * notional * np.sqrt(notional / liquidity)
        else:
            impact = np.zeros_like(notional)
        if passive is not None:
            spread = np.where(passive, 0.0, spread)
            slippage = np.where(passive, 0.0, slippage)
            impact = np.where(passive, 0.0, impact)
        return CostParts(commission, spread, slippage, impact)
