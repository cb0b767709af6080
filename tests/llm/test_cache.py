"""The response cache: the shared ChatModel contract, then what is a hit, what is stored, and when."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recai.llm import ChatModel, ScriptedChatModel, meter
from recai.llm.base import Decoding, Generation, Message
from recai.llm.cache import CachedChatModel, request_key
from recai.llm.scripted import ScriptExhaustedError
from recai.testing.chat_model import FILM_REQUEST, FILM_SCHEMA, HELLO, ChatModelSuite

VALID = json.dumps({"genre": "crime", "year": 1995, "details": {"tags": ["dark", "long"], "title": "Heat"}})
REPLY = "Red, green and blue are three colours I like."


class TestCachedScriptedConformance(ChatModelSuite):
    @pytest.fixture
    def chat_model(self, tmp_path: Path) -> CachedChatModel:
        return CachedChatModel(ScriptedChatModel(lambda msgs: REPLY), tmp_path / "cache.sqlite")

    def prepare_schema_reply(self, chat_model: ChatModel) -> None:
        assert isinstance(chat_model, CachedChatModel) and isinstance(chat_model.inner, ScriptedChatModel)
        chat_model.inner._function = lambda msgs: VALID


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A local OpenAI-compatible server answering the conformance prompts."""
    from tests.llm.openai_server import ServerState, openai_server

    def respond(request: dict[str, object]) -> str:
        messages = request["messages"]
        assert isinstance(messages, list)
        if "JSON schema" in messages[0]["content"]:
            return VALID
        return "Red, green and blue are three colours worth naming today."

    with openai_server(ServerState(responder=respond)) as (url, _state):
        yield url


@pytest.mark.network
class TestCachedOpenAIConformance(ChatModelSuite):
    """A natively schema-constrained backend behind the cache."""

    @pytest.fixture
    def chat_model(self, server: str, tmp_path: Path) -> CachedChatModel:
        from recai.llm.openai_compat import OpenAIChatModel

        inner = OpenAIChatModel("test-model", base_url=server, max_retries=0)
        model = CachedChatModel(inner, tmp_path / "cache.sqlite")
        assert model.native_schema is inner.native_schema
        return model


# ---------------------------------------------------------------- helpers
def cached(tmp_path: Path, script: object = None, *, name: str = "scripted") -> CachedChatModel:
    inner = ScriptedChatModel(script if script is not None else (lambda msgs: REPLY), name=name)  # type: ignore[arg-type]
    return CachedChatModel(inner, tmp_path / "cache.sqlite")


def inner_calls(model: CachedChatModel) -> int:
    assert isinstance(model.inner, ScriptedChatModel)
    return len(model.inner.calls)


class BrokenStream(ScriptedChatModel):
    """Streams two chunks, then fails like a dropped connection."""

    def _stream(self, messages: list[Message], **kwargs: object) -> Iterator[str]:
        self.calls.append(messages)
        yield "Red, "
        yield "green "
        raise ConnectionError("connection reset")


class Counting(ScriptedChatModel):
    """Thread-safe call counting for concurrency tests."""

    def __init__(self) -> None:
        super().__init__(lambda msgs: "reply to " + msgs[-1]["content"])
        self.lock = threading.Lock()
        self.n = 0

    def _generate(self, messages: list[Message], **kwargs: object) -> Generation:  # type: ignore[override]
        with self.lock:
            self.n += 1
        return Generation("reply to " + messages[-1]["content"], 5, 3, "stop")


# ---------------------------------------------------------------- hits and misses
def test_a_repeated_call_is_a_hit_that_skips_the_model(tmp_path: Path) -> None:
    model = cached(tmp_path)
    first = model.complete(HELLO, max_tokens=30)
    second = model.complete(HELLO, max_tokens=30)
    assert second.text == first.text == REPLY
    assert inner_calls(model) == 1
    assert (model.hits, model.misses) == (1, 1)
    assert model.entries() == 1


def test_hits_report_the_stored_tokens_and_the_savings(tmp_path: Path) -> None:
    model = cached(tmp_path)
    meter.reset()
    first = model.complete(HELLO, max_tokens=30)
    second = model.complete(HELLO, max_tokens=30)
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    # the same figures as the original call: per-sample token counts must not depend on the cache
    assert (second.prompt_tokens, second.completion_tokens) == (first.prompt_tokens, first.completion_tokens)
    stats = meter.report()["default"]["scripted"]
    assert stats["calls"] == 2 and stats["prompt_tokens"] == 2 * first.prompt_tokens
    saved = model.stats()
    assert saved["saved_prompt_tokens"] == first.prompt_tokens
    assert saved["saved_completion_tokens"] == first.completion_tokens
    assert saved["hits"] == 1 and saved["misses"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5, "seed": 1},
        {"seed": 7},
        {"max_tokens": 31},
        {"stop": ["zzz"]},
        {"response_format": {"type": "object"}},
    ],
)
def test_any_sampling_parameter_or_schema_change_is_a_miss(tmp_path: Path, change: dict[str, object]) -> None:
    model = cached(tmp_path, lambda msgs: '{"a": 1}')
    model.complete(HELLO, max_tokens=30)
    model.complete(HELLO, **{"max_tokens": 30, **change})  # type: ignore[arg-type]
    assert inner_calls(model) == 2 and model.hits == 0


def test_the_schema_is_part_of_the_key_even_when_the_prompt_does_not_show_it(tmp_path: Path) -> None:
    # describe_schema=False leaves the prompt unchanged, so only the schema itself tells the calls apart.
    model = cached(tmp_path, lambda msgs: '{"a": 1}')
    loose = {"type": "object"}
    strict = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    model.complete(HELLO, response_format=loose, describe_schema=False)
    model.complete(HELLO, response_format=strict, describe_schema=False)
    assert inner_calls(model) == 2 and model.hits == 0
    model.complete(HELLO, response_format=strict, describe_schema=False)
    assert model.hits == 1


def test_a_different_model_or_prompt_is_a_miss(tmp_path: Path) -> None:
    cached(tmp_path, name="a").complete(HELLO)
    other = cached(tmp_path, name="b")
    other.complete(HELLO)
    other.complete([*HELLO[:1], {"role": "user", "content": "Name four colours."}])
    assert inner_calls(other) == 2 and other.hits == 0


def test_model_id_separates_models_that_share_a_name(tmp_path: Path) -> None:
    base = CachedChatModel(ScriptedChatModel(["base"], name="m"), tmp_path / "c.sqlite", model_id="hf:/m")
    tuned = CachedChatModel(
        ScriptedChatModel(["tuned"], name="m"), tmp_path / "c.sqlite", model_id="hf:/m?adapter=/lora"
    )
    assert base.complete(HELLO).text == "base" and tuned.complete(HELLO).text == "tuned"
    assert tuned.name == "m" and tuned.stats()["model"] == "m"  # usage and prices still see the name


def test_equivalent_requests_share_a_key() -> None:
    a, _ = request_key("m", HELLO, schema=None, decoding=Decoding(10, 0, ["b", "a"]))
    b, _ = request_key("m", HELLO, schema=None, decoding=Decoding(10, 0.0, ["a", "b"]))
    c, _ = request_key("m", HELLO, schema=None, decoding=Decoding(10, 0.0, None))
    assert a == b != c


def test_keys_of_existing_cache_files_stay_the_same() -> None:
    decoding = Decoding(max_tokens=10, temperature=0.5, stop=["b", "a"], seed=3)
    key, canonical = request_key(
        "m", [{"role": "user", "content": "hi"}], schema={"type": "object"}, decoding=decoding, draw=2
    )
    assert canonical == (
        '{"draw":2,"max_tokens":10,"messages":[{"content":"hi","role":"user"}],"model":"m",'
        '"schema":{"type":"object"},"seed":3,"stop":["a","b"],"temperature":0.5,"v":1}'
    )
    assert key == "2ac4c52a97593261fe2a6caca7bf980dfc02cb6e82ac1e4d00c179abee802b32"


def test_the_cache_persists_across_instances(tmp_path: Path) -> None:
    cached(tmp_path).complete(HELLO, max_tokens=30)
    again = cached(tmp_path, ["never used"])
    assert again.complete(HELLO, max_tokens=30).text == REPLY
    assert inner_calls(again) == 0 and again.hits == 1


def test_a_schema_retry_chain_is_replayed_and_revalidated(tmp_path: Path) -> None:
    bad = '{"genre": "western", "year": 1995, "details": {"tags": [], "title": "Heat"}}'
    first = cached(tmp_path, [bad, VALID])
    result = first.complete(FILM_REQUEST, response_format=FILM_SCHEMA)
    assert result.attempts == 2
    replay = cached(tmp_path, [])  # an empty script: any model call would raise ScriptExhaustedError
    again = replay.complete(FILM_REQUEST, response_format=FILM_SCHEMA)
    assert again.parsed == result.parsed and again.attempts == 2 and again.raw == result.raw
    assert replay.hits == 2 and inner_calls(replay) == 0


def test_a_cached_reply_is_still_validated(tmp_path: Path) -> None:
    # The same request text without a schema stores plain prose; asking for a schema is another key.
    model = cached(tmp_path, lambda msgs: "no json here")
    with pytest.raises(Exception, match="no schema-valid reply"):
        model.complete(FILM_REQUEST, response_format=FILM_SCHEMA, max_schema_retries=0)
    with pytest.raises(Exception, match="no schema-valid reply"):
        cached(tmp_path, []).complete(FILM_REQUEST, response_format=FILM_SCHEMA, max_schema_retries=0)


# ---------------------------------------------------------------- sampling
def test_unseeded_samples_stay_distinct_and_replay_in_order(tmp_path: Path) -> None:
    model = cached(tmp_path, ["one", "two", "three"])
    draws = [model.complete(HELLO, temperature=0.8).text for _ in range(3)]
    assert draws == ["one", "two", "three"]
    replay = cached(tmp_path, ["four"])
    assert [replay.complete(HELLO, temperature=0.8).text for _ in range(3)] == draws
    assert replay.complete(HELLO, temperature=0.8).text == "four"  # a fourth draw was never stored


def test_seeded_samples_are_cached_like_greedy_ones(tmp_path: Path) -> None:
    model = cached(tmp_path, ["one", "two"])
    assert [model.complete(HELLO, temperature=0.8, seed=3).text for _ in range(2)] == ["one", "one"]


def test_distinct_samples_can_be_switched_off(tmp_path: Path) -> None:
    model = CachedChatModel(ScriptedChatModel(["one", "two"]), tmp_path / "c.sqlite", distinct_samples=False)
    assert [model.complete(HELLO, temperature=0.8).text for _ in range(2)] == ["one", "one"]


# ---------------------------------------------------------------- streaming
def test_a_finished_stream_is_stored_and_replayed(tmp_path: Path) -> None:
    model = cached(tmp_path)
    streamed = "".join(model.stream(HELLO, max_tokens=30))
    assert streamed == REPLY and model.entries() == 1
    replay = cached(tmp_path, [])
    assert "".join(replay.stream(HELLO, max_tokens=30)) == REPLY
    assert replay.complete(HELLO, max_tokens=30).text == REPLY  # complete without a schema shares it
    assert replay.hits == 2 and inner_calls(replay) == 0


def test_a_stream_the_consumer_abandons_is_not_stored(tmp_path: Path) -> None:
    model = cached(tmp_path)
    stream = model.stream(HELLO, max_tokens=30)
    next(stream)
    stream.close()
    assert model.entries() == 0
    assert "".join(model.stream(HELLO, max_tokens=30)) == REPLY
    assert inner_calls(model) == 2 and model.entries() == 1


def test_a_stream_that_fails_is_not_stored(tmp_path: Path) -> None:
    model = CachedChatModel(BrokenStream([]), tmp_path / "cache.sqlite")
    with pytest.raises(ConnectionError):
        "".join(model.stream(HELLO))
    assert model.entries() == 0


def test_a_stream_cut_by_a_stop_sequence_is_complete_and_stored(tmp_path: Path) -> None:
    model = cached(tmp_path)
    cut = "".join(model.stream(HELLO, max_tokens=30, stop=["blue"]))
    assert cut == "Red, green and " and model.entries() == 1
    replay = cached(tmp_path, [])
    assert "".join(replay.stream(HELLO, max_tokens=30, stop=["blue"])) == cut
    assert replay.complete(HELLO, max_tokens=30, stop=["blue"]).text == cut


def test_a_cached_stream_hit_still_honours_stop_sequences(tmp_path: Path) -> None:
    model = cached(tmp_path)
    model.complete(HELLO, max_tokens=30, stop=["three"])
    replay = cached(tmp_path, [])
    assert "".join(replay.stream(HELLO, max_tokens=30, stop=["three"])) == "Red, green and blue are "


# ---------------------------------------------------------------- lifecycle and concurrency
def test_native_schema_follows_the_inner_model(tmp_path: Path) -> None:
    model = cached(tmp_path)
    assert model.native_schema is False
    model.inner.native_schema = True
    assert model.native_schema is True


def test_closing_closes_the_file_not_the_inner_model(tmp_path: Path) -> None:
    model = cached(tmp_path)
    model.close()
    with pytest.raises(RuntimeError, match="has been closed"):
        model.complete(HELLO)
    assert model.inner.closed is False


def test_wrapping_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="already a CachedChatModel"):
        CachedChatModel(cached(tmp_path), tmp_path / "other.sqlite")


def test_a_file_that_is_not_a_cache_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not an sqlite database at all, just text" * 20)
    with pytest.raises(RuntimeError, match=r"cache\.sqlite is not a usable response cache"):
        CachedChatModel(ScriptedChatModel([]), bad)


def test_threads_share_one_instance(tmp_path: Path) -> None:
    inner = Counting()
    model = CachedChatModel(inner, tmp_path / "cache.sqlite")
    prompts = [[{"role": "user", "content": f"q{i % 10}"}] for i in range(200)]
    errors: list[BaseException] = []

    def work(chunk: list[list[Message]]) -> None:
        try:
            for p in chunk:
                assert model.complete(p).text == "reply to " + p[0]["content"]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(prompts[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert model.hits + model.misses == 200 and model.misses == inner.n
    assert model.entries() == 10 and 10 <= inner.n <= 10 + 8  # a racing miss may call the model twice


def test_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    script = (
        "import sys\n"
        "from recai.llm import ScriptedChatModel\n"
        "from recai.llm.cache import CachedChatModel\n"
        "m = CachedChatModel(ScriptedChatModel(lambda msgs: 'r ' + msgs[-1]['content']), sys.argv[1])\n"
        "for i in range(60):\n"
        "    m.complete([{'role': 'user', 'content': f'p{i}'}])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path)]) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    model = cached(tmp_path, [])
    assert model.entries() == 60
    assert model.complete([{"role": "user", "content": "p59"}]).text == "r p59"


def test_an_exhausted_inner_script_still_surfaces_on_a_miss(tmp_path: Path) -> None:
    with pytest.raises(ScriptExhaustedError):
        cached(tmp_path, []).complete(HELLO)
