"""Simulator settings as plain dataclasses; ``from_dict`` maps Hydra's ``sim.*`` nodes onto them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sim.agents.arbitrageur import ArbitrageurParams
from sim.agents.base import params_from_dict
from sim.agents.informed import InformedParams
from sim.agents.market_maker import MarketMakerParams
from sim.agents.noise import NoiseParams


@dataclass(frozen=True)
class EngineParams:
    """Venue settings: tick/lot sizes (e.g. from Binance exchangeInfo) and fees."""

    tick_size: float = 0.01
    lot_size: float = 0.00001
    band_ticks: int = 1 << 16
    capacity: int = 1 << 14
    maker_fee_bps: float = 0.0
    taker_fee_bps: float = 1.0
    depth_levels: int = 10

    def __post_init__(self):
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError("sim.engine.tick_size and lot_size must be > 0")
        if self.band_ticks < 16:
            raise ValueError("sim.engine.band_ticks must be >= 16")
        if self.capacity < 1 or self.depth_levels < 1:
            raise ValueError("sim.engine.capacity and depth_levels must be >= 1")

    @classmethod
    def from_dict(cls, values: dict | None) -> EngineParams:
        return params_from_dict(cls, values, "sim.engine")


@dataclass(frozen=True)
class AgentParams:
    """Per-type parameters (``count`` is the number of agents of that type)."""

    market_maker: MarketMakerParams = field(default_factory=MarketMakerParams)
    informed: InformedParams = field(default_factory=InformedParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    arbitrageur: ArbitrageurParams = field(default_factory=ArbitrageurParams)

    @classmethod
    def from_dict(cls, values: dict | None) -> AgentParams:
        values = dict(values or {})
        kinds = {f.name: f.default_factory for f in fields(cls)}
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise ValueError(f"unknown agent type(s) sim.agents.{', '.join(unknown)}")
        return cls(**{
            name: params_from_dict(type(factory()), values.get(name), f"sim.agents.{name}")
            for name, factory in kinds.items()
        })
