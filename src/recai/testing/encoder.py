"""The Encoder conformance suite: every backend returns unit-length float32 rows, deterministically,
with query/item prefixes applied, and refuses malformed calls the same way. Needs pytest::

    from recai.testing import EncoderSuite

    class TestMyEncoder(EncoderSuite):
        @pytest.fixture
        def encoder(self) -> Encoder:
            return MyEncoder(...)
"""

from __future__ import annotations

import numpy as np
import pytest

from recai.embed import Encoder

__all__ = ["TEXTS", "EncoderSuite"]

TEXTS = [
    "A heist thriller in Los Angeles.",
    "A quiet Japanese family drama.",
    "Astronauts travel through a wormhole.",
]


class EncoderSuite:
    """Mix into a test class that defines an ``encoder`` fixture.

    The contract every :class:`~recai.embed.encoder.Encoder` keeps (unit float32 rows, deterministic and
    batch-independent vectors), checked the same way for built-in encoders and a user's own. It has no
    settings: the fixture is all it needs.
    """

    def test_rows_are_unit_float32(self, encoder: Encoder) -> None:
        vectors = encoder.encode(TEXTS, kind="item")
        assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_deterministic_and_batch_independent(self, encoder: Encoder) -> None:
        together = encoder.encode(TEXTS, kind="query", batch_size=3)
        one_by_one = np.vstack([encoder.encode([t], kind="query", batch_size=1) for t in TEXTS])
        assert np.allclose(together, one_by_one, atol=1e-4)

    def test_distinct_texts_get_distinct_vectors(self, encoder: Encoder) -> None:
        vectors = encoder.encode(TEXTS)
        sims = vectors @ vectors.T
        assert (sims[~np.eye(3, dtype=bool)] < 0.999).all()

    def test_malformed_calls(self, encoder: Encoder) -> None:
        assert encoder.encode([], kind="item").shape == (0, encoder.dim)
        with pytest.raises(TypeError, match="list of texts"):
            encoder.encode("one string")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="kind"):
            encoder.encode(TEXTS, kind="document")  # type: ignore[arg-type]

    def test_identity_names_the_model(self, encoder: Encoder) -> None:
        assert encoder.identity and encoder.cache_key("query") != encoder.cache_key("item")
