"""Stylized facts of price, trade and quote series: pure functions on numpy arrays, each with a
definition, a target band from the literature (configurable) and a pass/fail (docs/concepts/facts.md).
"""

from calibrate.facts.config import DEFINITIONS, FACTS, FactParams, bands
from calibrate.facts.result import Fact
from calibrate.facts.returns import moments
from calibrate.facts.series import MarketSeries
from calibrate.facts.suite import MOMENT_NAMES, compare, evaluate, moment_vector, moments_of

__all__ = ["DEFINITIONS", "FACTS", "MOMENT_NAMES", "Fact", "FactParams", "MarketSeries", "bands",
           "compare", "evaluate", "moment_vector", "moments", "moments_of"]
