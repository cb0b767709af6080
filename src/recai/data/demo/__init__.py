"""The embedded ``demo`` dataset: 300 well-known films and a simulated viewing log.

``recai.data.load("demo")`` loads it (:func:`recai.data.demo.loader.load_demo`);
:mod:`recai.data.demo.simulate` is the simulator that wrote its log. Both are imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_attributes

_LAZY = {
    "demo_films": "recai.data.demo.loader",
    "load_demo": "recai.data.demo.loader",
    "SimulationConfig": "recai.data.demo.simulate",
    "simulate_interactions": "recai.data.demo.simulate",
}

__all__ = ["SimulationConfig", "demo_films", "load_demo", "simulate_interactions"]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

if TYPE_CHECKING:
    from recai.data.demo.loader import demo_films, load_demo
    from recai.data.demo.simulate import SimulationConfig, simulate_interactions
