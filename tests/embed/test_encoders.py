from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from recai.embed import Encoder, load_encoder
from recai.embed.openai_encoder import OpenAIEncoder
from recai.testing.encoder import EncoderSuite
from tests.llm.openai_server import ServerState, openai_server

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    from recai.llm.resolve import ModelNotFoundError

    try:
        return load_encoder("st:all-minilm-l6-v2")
    except ModelNotFoundError as exc:
        pytest.skip(f"the packaged embedder is not installed: {exc}")


class TestSentenceTransformerConformance(EncoderSuite):
    @pytest.fixture
    def encoder(self, minilm: Encoder) -> Encoder:
        return minilm


@pytest.mark.network
class TestOpenAIEncoderSuite(EncoderSuite):
    @pytest.fixture
    def encoder(self) -> Iterator[Encoder]:
        with openai_server(ServerState(embedding_dim=16)) as (url, _):
            yield load_encoder(f"openai:{url}#text-embedding-test")


def test_the_default_embedder_understands_meaning(minilm: Encoder) -> None:
    assert minilm.dim == 384
    items = minilm.encode(
        ["An astronaut is stranded on Mars.", "A chef opens a small pasta restaurant."], "item"
    )
    query = minilm.encode(["space survival film"], "query")
    assert (query @ items.T).argmax() == 0


def test_prefixes_distinguish_queries_from_items() -> None:
    from recai.embed.st_encoder import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder("all-minilm-l6-v2", query_prefix="query: ", item_prefix="passage: ")
    q, i = enc.encode(["heist film"], "query"), enc.encode(["heist film"], "item")
    assert not np.allclose(q, i)
    assert enc.cache_key("query").endswith("|query|query: ")


@pytest.mark.network
def test_openai_encoder_batches_and_normalises() -> None:
    with openai_server(ServerState(embedding_dim=8)) as (url, state):
        enc = OpenAIEncoder("m", base_url=url, batch_size=2)
        vectors = enc.encode([f"text {i}" for i in range(5)])
        assert vectors.shape == (5, 8) and np.allclose(np.linalg.norm(vectors, axis=1), 1)
        assert [len(r["input"]) for r in state.requests[1:]] == [2, 2, 1]  # after the dimension probe


class TestBagOfWordsConformance(EncoderSuite):
    """The weightless stand-in the agent and serve tests use keeps the same contract."""

    @pytest.fixture
    def encoder(self) -> Encoder:
        from recai.testing.fakes import BagOfWordsEncoder

        return BagOfWordsEncoder()
