"""Conformance suites every built-in component passes, for your own components too (needs pytest).

Subclass a suite in a test module, LensKit-style, and pytest runs the whole contract on your class::

    from recai.testing import RecommenderSuite

    class TestMyRecommender(RecommenderSuite):
        @staticmethod
        def make() -> MyRecommender:
            return MyRecommender(factors=8, seed=1)

The suites: :class:`RecommenderSuite` (``make``), :class:`ChatModelSuite` (a ``chat_model`` fixture),
:class:`EncoderSuite` (an ``encoder`` fixture), :class:`ToolSuite` (``tool`` and ``tool_args``
fixtures) and :class:`ExtractorSuite` (``make``). Their names do not start with ``Test``, so pytest
collects only your subclasses. :mod:`recai.testing.data` builds the small datasets they run on,
:mod:`recai.testing.fakes` holds deterministic stand-ins (an encoder without weights) and
:func:`recai.testing.suite.class_fixture` declares a fixture built once per suite class.

``import recai`` never imports this package, and this package imports pytest only when a suite is used,
so pytest stays a test-time dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".chat_model": ["ChatModelSuite"],
        ".encoder": ["EncoderSuite"],
        ".extractor": ["ExtractorSuite"],
        ".recommender": ["RecommenderSuite"],
        ".tool": ["ToolSuite"],
    },
)

__all__ = ["ChatModelSuite", "EncoderSuite", "ExtractorSuite", "RecommenderSuite", "ToolSuite"]

if TYPE_CHECKING:
    from recai.testing.chat_model import ChatModelSuite
    from recai.testing.encoder import EncoderSuite
    from recai.testing.extractor import ExtractorSuite
    from recai.testing.recommender import RecommenderSuite
    from recai.testing.tool import ToolSuite
