"""A prompt-level response cache around any ChatModel, so re-running an evaluation costs nothing.

:class:`CachedChatModel` replaces the inner model's ``_generate``/``_stream`` with a lookup in an SQLite
file keyed by the sha256 of a canonical JSON of (model name or ``model_id``, messages, schema,
max_tokens, temperature, stop, seed). Everything else (schema description in the prompt, parsing,
validation, retries with the error fed back, stop cuts, usage metering) stays in
:class:`~recai.llm.base.ChatModel`, so a cached reply is checked exactly like a fresh one, and a schema
retry chain is replayed call by call. Each attempt is one lookup in ``hits``/``misses``.

Decisions worth knowing:

- Usage: a hit reports the token counts stored with the reply, so per-sample figures (tokens per
  conversation, per ranking) describe the system and do not change when a run is repeated. The meter
  and the cost estimate therefore show what the calls cost without the cache; what this run did not
  spend is in :meth:`CachedChatModel.stats` (hits, saved tokens).
- Sampling: a call with ``temperature > 0`` and no ``seed`` asks for a fresh random draw. Keying it by
  the prompt alone would turn n samples (self-consistency, repeated judging) into n copies of one, so by
  default the n-th identical unseeded sampled call made through this instance maps to the n-th stored
  draw (``distinct_samples=True``): samples stay distinct, and a re-run replays them in order.
- Streams share entries with ``complete`` calls that have no schema. A stream is stored only when it
  finished normally or was cut by a stop sequence; a consumer that stops reading early, or an error,
  stores nothing.
- SQLite in WAL mode with a busy timeout makes one file safe to share between processes; a lock makes
  one instance safe to share between threads. Two threads missing the same key both call the model (the
  later answer wins in the file); nothing is locked while the model runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from recai.llm.base import ChatModel, Decoding, Generation, Message, apply_stop
from recai.llm.retry import RetryPolicy

#: Bump when the key payload changes meaning, so old entries are never misread.
KEY_VERSION = 1


def request_key(
    model: str,
    messages: Sequence[Message],
    *,
    schema: dict[str, Any] | None,
    decoding: Decoding,
    draw: int | None = None,
) -> tuple[str, str]:
    """The cache key (hex sha256) and the canonical JSON it hashes.

    Numbers are normalised (``0`` and ``0.0`` are the same temperature) and stop sequences are a sorted
    set (their order does not change the reply); ``draw`` numbers repeated unseeded samples.
    """
    payload: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "schema": schema,
        "max_tokens": int(decoding.max_tokens),
        "temperature": float(decoding.temperature),
        "stop": sorted({s for s in decoding.stop if s}) if decoding.stop else None,
        "seed": None if decoding.seed is None else int(decoding.seed),
    }
    if draw is not None:
        payload["draw"] = draw
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest(), canonical


class CachedChatModel(ChatModel):
    """``inner`` with its replies stored in the SQLite file ``path``, so a repeated call costs nothing.

    ``close()`` closes the cache file only: the inner model belongs to whoever built it (often the
    ``load_chat_model`` cache).

    Args:
        inner: The model that answers misses.
        path: The SQLite file (created on demand; shareable between processes).
        model_id: What entries are keyed by (default: ``inner.name``). Pass something that identifies
            the weights when the name does not, such as the full spec with an adapter
            (``hf:/models/base?adapter=/models/lora``): two models with one id share answers.
        distinct_samples: Give the n-th identical unseeded sampled call the n-th stored draw, so samples
            stay distinct (see the module).

    Attributes:
        hits: Lookups made through this instance that a stored reply answered.
        misses: Lookups that went to ``inner``.
        saved_prompt_tokens: Prompt tokens hits did not spend.
        saved_completion_tokens: Completion tokens hits did not spend.
    """

    def __init__(
        self,
        inner: ChatModel,
        path: str | Path,
        *,
        model_id: str | None = None,
        distinct_samples: bool = True,
    ) -> None:
        if isinstance(inner, CachedChatModel):
            raise TypeError("inner is already a CachedChatModel; wrap the model itself once")
        self.inner = inner
        self.name = inner.name
        self.model_id = model_id or inner.name
        self.path = Path(path)
        self.distinct_samples = distinct_samples
        self.hits = 0
        self.misses = 0
        self.saved_prompt_tokens = 0
        self.saved_completion_tokens = 0
        self._lock = threading.Lock()
        self._draws: dict[str, int] = {}
        self._con: sqlite3.Connection | None = None
        self._pid = -1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._connection()

    # ------------------------------------------------------------ ChatModel contract
    @property  # type: ignore[override]
    def native_schema(self) -> bool:
        """The inner model's, read live (a backend may switch it off after a server refuses schemas)."""
        return self.inner.native_schema

    @property  # type: ignore[override]
    def default_concurrency(self) -> int:
        return self.inner.default_concurrency

    @property  # type: ignore[override]
    def retry(self) -> RetryPolicy:
        """The inner model's: this wrapper calls the inner backend directly, so it retries for it."""
        return self.inner.retry

    def _generate(
        self, messages: list[Message], *, schema: dict[str, Any] | None, decoding: Decoding
    ) -> Generation:
        key, canonical = self._key(messages, schema, decoding)
        found = self._lookup(key)
        if found is not None:  # the stored counts: token figures describe the system, not the cache
            return found
        gen = self.inner._generate(messages, schema=schema, decoding=decoding)
        self._store(key, canonical, gen)
        return gen

    def _stream(self, messages: list[Message], *, decoding: Decoding, usage: dict[str, int]) -> Iterator[str]:
        key, canonical = self._key(messages, None, decoding)
        found = self._lookup(key)
        if found is not None:
            usage["prompt_tokens"], usage["completion_tokens"] = found.prompt_tokens, found.completion_tokens
            if found.text:
                yield found.text
            return
        parts: list[str] = []
        try:
            for chunk in self.inner._stream(messages, decoding=decoding, usage=usage):
                parts.append(chunk)
                yield chunk
        except GeneratorExit:
            # The base class stops reading as soon as a stop sequence shows up: that reply is complete.
            text, hit = apply_stop("".join(parts), decoding.stop)
            if hit:
                self._store(key, canonical, _from_usage(text, usage, "stop"))
            raise
        self._store(key, canonical, _from_usage("".join(parts), usage, None))

    def close(self) -> None:
        """Close the cache file (the inner model stays open: it is not ours)."""
        with self._lock:
            if self._con is not None and self._pid == os.getpid():
                self._con.close()
            self._con = None
        super().close()

    # ------------------------------------------------------------ cache
    def stats(self) -> dict[str, Any]:
        """Hits, misses and the tokens hits did not spend, for a run's usage report."""
        with self._lock:
            return {
                "model": self.name,
                "path": str(self.path),
                "hits": self.hits,
                "misses": self.misses,
                "saved_prompt_tokens": self.saved_prompt_tokens,
                "saved_completion_tokens": self.saved_completion_tokens,
            }

    def entries(self) -> int:
        """Stored replies in the file (from every model and process that shares it)."""
        with self._lock:
            return int(self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def _key(
        self, messages: list[Message], schema: dict[str, Any] | None, decoding: Decoding
    ) -> tuple[str, str]:
        key, canonical = request_key(self.model_id, messages, schema=schema, decoding=decoding)
        if self.distinct_samples and decoding.temperature > 0 and decoding.seed is None:
            with self._lock:
                draw = self._draws.get(key, 0)
                self._draws[key] = draw + 1
            key, canonical = request_key(self.model_id, messages, schema=schema, decoding=decoding, draw=draw)
        return key, canonical

    def _connection(self) -> sqlite3.Connection:
        """The open connection (caller holds the lock); reopened in a forked child process."""
        if self._con is None or self._pid != os.getpid():
            con = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute(
                    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                    "text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
                    "finish_reason TEXT, request TEXT NOT NULL, created REAL NOT NULL)"
                )
            except sqlite3.DatabaseError as exc:
                con.close()
                raise RuntimeError(f"{self.path} is not a usable response cache: {exc}") from exc
            self._con, self._pid = con, os.getpid()
        return self._con

    def _lookup(self, key: str) -> Generation | None:
        with self._lock:
            if self.closed:
                raise RuntimeError(f"the response cache {self.path} has been closed")
            row = (
                self._connection()
                .execute(
                    "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM responses "
                    "WHERE key = ?",
                    (key,),
                )
                .fetchone()
            )
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
            self.saved_prompt_tokens += int(row[1])
            self.saved_completion_tokens += int(row[2])
            return Generation(row[0], int(row[1]), int(row[2]), row[3], cached=True)

    def _store(self, key: str, canonical: str, gen: Generation) -> None:
        with self._lock:
            if self.closed:
                return
            self._connection().execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    self.model_id,
                    gen.text,
                    int(gen.prompt_tokens),
                    int(gen.completion_tokens),
                    gen.finish_reason,
                    canonical,
                    time.time(),
                ),
            )


def _from_usage(text: str, usage: dict[str, int], finish_reason: str | None) -> Generation:
    return Generation(
        text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), finish_reason
    )
