"""The embedded ``demo`` dataset: 300 well-known films and a simulated viewing log.

``recai.data.load("demo")`` loads it (:func:`recai.data.demo.loader.load_demo`);
:mod:`recai.data.demo.simulate` is the simulator that wrote its log. Both are imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".loader": ["demo_films", "load_demo"],
        ".simulate": ["SimulationConfig", "simulate_interactions"],
    },
)

__all__ = ["SimulationConfig", "demo_films", "load_demo", "simulate_interactions"]

if TYPE_CHECKING:
    from recai.data.demo.loader import demo_films, load_demo
    from recai.data.demo.simulate import SimulationConfig, simulate_interactions
