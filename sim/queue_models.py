"""Queue-position models for backtest mode: how much real size is ahead of an agent's order.

An order joining a real level starts behind everything displayed there. Real trades at its price
consume the queue ahead first, then fill the order (the venue does that part). What these models
decide is the other cause of a level shrinking, cancellations: how much of a cancelled size was
ahead of the order. Interface (vectorised over resting orders):

    after_cancels(ahead, behind, cancelled, new_depth) -> new ahead

hftbacktest-style: ``RiskAverseQueue`` assumes cancels come from behind (the queue ahead only
shrinks by trades, and never exceeds the level's displayed size); ``ProbQueue`` splits cancels
between front and back with probability f(ahead) / (f(ahead) + f(behind)), f(x) = x ** power.
"""

from __future__ import annotations

import numpy as np


class RiskAverseQueue:
    """Cancels never move us forward, beyond the level shrinking below our position."""

    def after_cancels(self, ahead, behind, cancelled, new_depth):
        return np.minimum(ahead, new_depth)


class ProbQueue:
    """Cancels hit the front with probability f(ahead) / (f(ahead) + f(behind))."""

    def __init__(self, power: float = 2.0):
        if power <= 0:
            raise ValueError(f"sim.backtest.queue.power must be > 0, got {power}")
        self.power = power

    def after_cancels(self, ahead, behind, cancelled, new_depth):
        fa = np.power(np.maximum(ahead, 0.0), self.power)
        fb = np.power(np.maximum(behind, 0.0), self.power)
        tot = fa + fb
        share = np.divide(fa, tot, out=np.zeros_like(fa), where=tot > 0)
        return np.minimum(np.maximum(ahead - share * cancelled, 0.0), new_depth)


QUEUE_MODELS = {"risk_averse": RiskAverseQueue, "prob": ProbQueue}


def make_queue_model(name: str, **kwargs):
    """Queue model by config name (sim.backtest.queue.model)."""
    if name not in QUEUE_MODELS:
        raise ValueError(f"sim.backtest.queue.model must be one of {sorted(QUEUE_MODELS)}, "
                         f"got {name!r}")
    return QUEUE_MODELS[name](**kwargs)
