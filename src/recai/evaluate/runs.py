"""One folder per evaluation run, written so that a run can be audited, resumed and compared.

Layout (every file but ``records.jsonl`` is replaced atomically, so a crash leaves the previous
version or the new one, never half of one):

- ``config.json``: what was run (``task`` plus the caller's config). Resuming with another config is
  refused, naming the keys that differ; keys listed in ``config["_volatile"]`` (worker counts, start
  times) are ignored in that comparison.
- ``records.jsonl``: one JSON object per evaluated sample, appended, flushed and fsync'd as soon as the
  sample is done (``replace_records`` rewrites it atomically, with the same ids, to rescore). Each
  has a string ``"id"`` and usually ``"scores": {metric: number}``, the per-sample
  numbers that confidence intervals and paired tests are computed from (``None`` means "not
  applicable" and is skipped). A run killed mid-write leaves at most one truncated last line, which the
  next open drops (rewriting the file atomically), so that sample is simply evaluated again.
- ``metrics.json``: aggregate metrics (structure in :mod:`recai.evaluate.report`).
- ``usage.json``: LLM calls and tokens per session (a resumed run is a new session), totals per model
  and component, and the cost estimate from a :class:`~recai.evaluate.prices.PriceTable`.
- ``report.md`` and its PNG plots (:func:`recai.evaluate.report.write_report`).
- ``.lock``: held while a process writes the run, so that two evaluators cannot append to one file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from recai.data.atomic import atomic_file, write_text_atomic
from recai.data.errors import DataError
from recai.errors import RecaiError
from recai.evaluate.prices import PriceTable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock, the rest works
    fcntl = None  # type: ignore[assignment]

CONFIG = "config.json"
RECORDS = "records.jsonl"
METRICS = "metrics.json"
USAGE = "usage.json"
REPORT = "report.md"
LOCK = ".lock"
_STAT_KEYS = ("calls", "prompt_tokens", "completion_tokens", "latency_s", "failures")


class ConfigMismatchError(ValueError, RecaiError):
    """An existing run folder was made with another configuration; ``keys`` are the differing ones.

    Args:
        path: The run folder.
        keys: The config keys whose values differ.
    """

    def __init__(self, path: Path, keys: list[str]) -> None:
        self.path = path
        self.keys = keys
        super().__init__(
            f"{path / CONFIG} was written by a run with another configuration (differing: "
            f"{', '.join(keys)}); use another folder, or resume=False, overwrite=True to start it again"
        )


class RunLockedError(RuntimeError, RecaiError):
    """Another process is writing to this run folder."""


class RunFolder:
    """A run's folder. Use :meth:`open` to write a run (it holds the folder's lock until :meth:`close`)
    and :meth:`load` to read a finished or interrupted one.

    One folder per run makes evaluations resumable and comparable: the config, each sample's record and
    the usage are written as they happen.

    Args:
        path: The run folder.
        config: The run's configuration (as written to ``config.json``).
        lock: The open lock file of a run being written; ``None`` for a run opened to read.
    """

    def __init__(self, path: Path, config: dict[str, Any], *, lock: IO[str] | None = None) -> None:
        self.path = path
        self.config = config
        self.session = uuid.uuid4().hex
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        #: True when opening dropped a truncated last line left by an interrupted run.
        self.repaired = False
        self._lock_file = lock
        self._mutex = threading.Lock()
        self._ids: set[str] | None = None

    # ------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        task: str,
        config: Mapping[str, Any],
        resume: bool = True,
        overwrite: bool = False,
    ) -> RunFolder:
        """Create the run folder, or reopen it to resume when its config matches.

        ``resume=False`` starts from scratch: an empty or missing folder is fine, an existing run is
        replaced only with ``overwrite=True``. A non-empty folder that is not a run is never touched.
        """
        path = Path(path)
        if not isinstance(task, str) or not task:
            raise ValueError("task must be a non-empty string such as 'ranking' or 'conversation'")
        if "task" in config and config["task"] != task:
            raise ValueError(f"config['task'] is {config['task']!r} but task is {task!r}")
        full = _jsonable({**config, "task": task}, "config", nonfinite="error")
        _check_volatile(full, "config")
        path.mkdir(parents=True, exist_ok=True)
        lock = _acquire(path)
        try:
            existing = _read_json(path / CONFIG) if (path / CONFIG).exists() else None
            if existing is not None and not isinstance(existing, dict):
                raise DataError("expected a JSON object", path=path / CONFIG)
            for stale in path.glob(f".{CONFIG}.tmp-*"):  # a first config write killed before its rename
                stale.unlink(missing_ok=True)
            others = [p.name for p in path.iterdir() if p.name != LOCK]
            if existing is None and others:
                raise FileExistsError(
                    f"{path} is not empty and has no {CONFIG}: not a run folder, refusing to write into it"
                )
            if existing is not None and not resume:
                if not overwrite:
                    raise FileExistsError(
                        f"{path} already holds a run; pass overwrite=True to replace it, or resume=True"
                    )
                for child in path.iterdir():
                    if child.name == LOCK:
                        continue
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
                existing = None
            if existing is not None:
                differing = config_differences(existing, full)
                if differing:
                    raise ConfigMismatchError(path, differing)
                run = cls(path, existing, lock=lock)
                run._load()
                return run
            write_text_atomic(path / CONFIG, _dumps(full) + "\n")
            return cls(path, full, lock=lock)
        except BaseException:
            _release(lock)
            raise

    @classmethod
    def load(cls, path: str | Path) -> RunFolder:
        """An existing run, for reading (reports, comparisons); takes no lock and repairs nothing."""
        path = Path(path)
        if not (path / CONFIG).exists():
            raise FileNotFoundError(f"{path} is not a run folder ({CONFIG} missing)")
        config = _read_json(path / CONFIG)
        if not isinstance(config, dict):
            raise DataError("expected a JSON object", path=path / CONFIG)
        return cls(path, config)

    @property
    def task(self) -> str:
        return str(self.config.get("task", ""))

    def close(self) -> None:
        """Release the folder's lock (also done when the process ends, however it ends)."""
        _release(self._lock_file)
        self._lock_file = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ records
    def done_ids(self) -> set[str]:
        """Ids of the samples already recorded (skip these when resuming)."""
        with self._mutex:
            if self._ids is None:
                self._load()
            assert self._ids is not None
            return set(self._ids)

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one sample's record, durably (flushed and fsync'd) before returning."""
        if self._lock_file is None:
            raise RuntimeError(f"{self.path}: open the run with RunFolder.open to append records")
        if not isinstance(record, Mapping):
            raise TypeError(f"a record must be a dict, got {type(record).__name__}")
        rid = record.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError(f"a record needs a non-empty string 'id', got {rid!r}")
        data = _jsonable(dict(record), f"record {rid!r}", nonfinite="error")
        _check_scores(data.get("scores"), f"record {rid!r}")
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
        target = self.path / RECORDS
        with self._mutex:
            if self._ids is None:
                self._load()
            assert self._ids is not None
            if rid in self._ids:
                raise ValueError(f"{target}: a record with id {rid!r} is already there")
            created = not target.exists()
            with target.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            if created:
                _fsync_dir(self.path)
            self._ids.add(rid)

    def replace_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Replace every record at once, atomically: for rescoring stored answers with a corrected scorer.

        The ids must be exactly the ones already recorded (nothing is added, dropped or renamed), so
        that a rescore can never hide or invent a sample.
        """
        if self._lock_file is None:
            raise RuntimeError(f"{self.path}: open the run with RunFolder.open to replace records")
        target = self.path / RECORDS
        lines = []
        ids: list[str] = []
        for record in records:
            rid = record.get("id") if isinstance(record, Mapping) else None
            if not isinstance(rid, str) or not rid:
                raise ValueError(f"{target}: a record needs a non-empty string 'id', got {rid!r}")
            data = _jsonable(dict(record), f"record {rid!r}", nonfinite="error")
            _check_scores(data.get("scores"), f"record {rid!r}")
            lines.append(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n")
            ids.append(rid)
        with self._mutex:
            if self._ids is None:
                self._load()
            assert self._ids is not None
            if len(set(ids)) != len(ids) or set(ids) != self._ids:
                raise ValueError(f"{target}: replacing records must keep exactly the recorded ids")
            with atomic_file(target) as tmp:
                tmp.write_text("".join(lines), encoding="utf-8")

    def update_records(
        self,
        examples: Mapping[str, Any],
        fields: Callable[[dict[str, Any], Any], Mapping[str, Any] | None],
    ) -> int:
        """Rescore stored answers: ``fields(record, example)`` gives what each record should hold (``None``:
        leave it), for the records whose id is in ``examples``; the records are rewritten (see
        :meth:`replace_records`) if any changed. Returns how many changed.

        A corrected or added metric then applies to earlier runs without asking the model again.
        """
        records = self.records()
        changed = 0
        for record in records:
            example = examples.get(record["id"])
            if example is None:
                continue
            update = fields(record, example)
            if update is not None and any(record.get(key) != value for key, value in update.items()):
                record.update(update)
                changed += 1
        if changed:
            self.replace_records(records)
        return changed

    def records(self) -> list[dict[str, Any]]:
        """Every record, in the order written (a truncated last line is left out)."""
        return _parse_records(self.path / RECORDS)[0]

    def _load(self) -> None:
        """Read the ids, dropping a truncated last line (rewriting the file atomically)."""
        target = self.path / RECORDS
        records, repaired = _parse_records(target)
        if repaired is not None and self._lock_file is not None:
            with atomic_file(target) as tmp:
                tmp.write_bytes(repaired)
            self.repaired = True
        self._ids = {r["id"] for r in records}

    # ------------------------------------------------------------ results
    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write ``metrics.json`` atomically (checked against the structure in ``recai.evaluate.report``)."""
        from recai.evaluate.report import check_metrics

        data = _jsonable(dict(metrics), "metrics", nonfinite="null")
        check_metrics(data, str(self.path / METRICS))
        if data["task"] != self.task:
            raise ValueError(f"metrics task {data['task']!r} is not this run's task {self.task!r}")
        write_text_atomic(self.path / METRICS, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return self.path / METRICS

    def read_metrics(self) -> dict[str, Any]:
        from recai.evaluate.report import check_metrics

        target = self.path / METRICS
        if not target.exists():
            raise FileNotFoundError(f"{target} does not exist: the run has not written its metrics")
        data = _read_json(target)
        check_metrics(data, str(target))
        return data

    def write_usage(
        self,
        usage: Mapping[str, Mapping[str, Mapping[str, float]]],
        prices: PriceTable,
        *,
        cache: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Path:
        """Write ``usage.json``: this session's usage (``UsageMeter.report()``, cumulative: calling again
        replaces this session's entry) next to earlier sessions', with totals and a cost estimate.

        ``cache`` takes :meth:`CachedChatModel.stats` (one or a list) to report hits and what they saved.
        A resumed session that called nothing (a finished run reopened to re-summarise it) leaves the
        earlier sessions' file as it was, so the report does not count it as a session.
        """
        target = self.path / USAGE
        sessions: list[dict[str, Any]] = []
        if target.exists():
            old = _read_json(target)
            sessions = [s for s in old.get("sessions", []) if s.get("id") != self.session]
        caches = [dict(cache)] if isinstance(cache, Mapping) else [dict(c) for c in cache or ()]
        idle = not usage and not any(c.get("hits") or c.get("misses") for c in caches)
        if idle and sessions:
            return target
        entry = {
            "id": self.session,
            "started": self.started,
            "usage": _jsonable(_check_usage(usage, "usage"), "usage", nonfinite="null"),
            "cache": _jsonable(caches, "cache", nonfinite="null"),
        }
        sessions.append(entry)
        data = summarize_usage(sessions, prices)
        write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return target

    def read_usage(self) -> dict[str, Any] | None:
        target = self.path / USAGE
        return _read_json(target) if target.exists() else None

    def write_report(self) -> Path:
        """Build ``report.md`` and its plots from the files written so far."""
        from recai.evaluate.report import write_report

        return write_report(self)


# ---------------------------------------------------------------- usage and cost
def summarize_usage(sessions: list[dict[str, Any]], prices: PriceTable) -> dict[str, Any]:
    """The usage.json document: sessions as given, plus totals per model and component with costs.

    A model without a price gets ``cost: null`` (unless it used no tokens), and so does the total:
    ``total.cost_known`` sums the models that have one and ``total.unknown_price_models`` names the rest.
    """
    by_model: dict[str, dict[str, Any]] = {}
    by_component: dict[str, dict[str, Any]] = {}
    for session in sessions:
        for component, models in session.get("usage", {}).items():
            for model, stats in models.items():
                for bucket in (by_model.setdefault(model, {}), by_component.setdefault(component, {})):
                    for k in _STAT_KEYS:
                        bucket[k] = bucket.get(k, 0) + stats.get(k, 0)
                comp = by_component[component]
                comp.setdefault("_models", {}).setdefault(model, [0, 0])
                comp["_models"][model][0] += stats.get("prompt_tokens", 0)
                comp["_models"][model][1] += stats.get("completion_tokens", 0)

    def cost_of(model: str, prompt: int, completion: int) -> float | None:
        if prompt == 0 and completion == 0:
            return 0.0
        return prices.cost(model, int(prompt), int(completion))

    unknown: list[str] = []
    for model, stats in by_model.items():
        price = prices.price(model)
        stats["price"] = (
            None if price is None else {"input": price.input, "output": price.output, "source": price.source}
        )
        stats["cost"] = cost_of(model, stats["prompt_tokens"], stats["completion_tokens"])
        if stats["cost"] is None:
            unknown.append(model)
    for stats in by_component.values():
        costs = [cost_of(m, p, c) for m, (p, c) in stats.pop("_models").items()]
        stats["cost"] = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    total: dict[str, Any] = {k: sum(s[k] for s in by_model.values()) for k in _STAT_KEYS}
    known = sum(s["cost"] for s in by_model.values() if s["cost"] is not None)
    total["cost"] = None if unknown else known
    total["cost_known"] = known
    total["unknown_price_models"] = sorted(unknown)
    cache_total: dict[str, Any] = {}
    for session in sessions:
        for stats in session.get("cache") or []:
            for k in ("hits", "misses", "saved_prompt_tokens", "saved_completion_tokens"):
                cache_total[k] = cache_total.get(k, 0) + int(stats.get(k, 0))
            saved = cost_of(
                str(stats.get("model", "")),
                int(stats.get("saved_prompt_tokens", 0)),
                int(stats.get("saved_completion_tokens", 0)),
            )
            prev = cache_total.get("saved_cost", 0.0)
            cache_total["saved_cost"] = None if saved is None or prev is None else prev + saved
    return {
        "currency": prices.currency,
        "price_sources": list(prices.sources),
        "total": total,
        "by_model": dict(sorted(by_model.items())),
        "by_component": dict(sorted(by_component.items())),
        "cache": cache_total or None,
        "sessions": sessions,
    }


def _check_usage(usage: Any, where: str) -> dict[str, Any]:
    if hasattr(usage, "report") and callable(usage.report):
        usage = usage.report()  # a UsageMeter
    if not isinstance(usage, Mapping):
        raise TypeError(f"{where} must be UsageMeter.report() output, got {type(usage).__name__}")
    for component, models in usage.items():
        if not isinstance(models, Mapping):
            raise ValueError(f"{where}[{component!r}] must map model names to call statistics")
        for model, stats in models.items():
            if not isinstance(stats, Mapping) or not all(_is_number(stats.get(k, 0)) for k in _STAT_KEYS):
                raise ValueError(f"{where}[{component!r}][{model!r}] must hold numbers for {_STAT_KEYS}")
    return {c: {m: dict(s) for m, s in models.items()} for c, models in usage.items()}


# ---------------------------------------------------------------- config comparison
def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ, ignoring those listed in either config's ``_volatile``."""
    volatile = {"_volatile", *old.get("_volatile", ()), *new.get("_volatile", ())}
    out: list[str] = []
    _diff(old, new, "", volatile, out)
    return sorted(out)


def _diff(old: Any, new: Any, prefix: str, volatile: set[str], out: list[str]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}{key}"
            if name in volatile:
                continue
            if key not in old or key not in new:
                out.append(name)
            else:
                _diff(old[key], new[key], name + ".", volatile, out)
    elif _canonical(old) != _canonical(new):
        out.append(prefix.rstrip(".") or "<config>")


def _check_volatile(config: dict[str, Any], where: str) -> None:
    volatile = config.get("_volatile", [])
    if not isinstance(volatile, list) or not all(isinstance(v, str) for v in volatile):
        raise ValueError(f"{where}['_volatile'] must be a list of key names, got {volatile!r}")


# ---------------------------------------------------------------- records file
def _parse_records(target: Path) -> tuple[list[dict[str, Any]], bytes | None]:
    """The records, and the file's repaired content when its last line was cut short (else None).

    Every complete write ends with a newline, so only the text after the last newline can be a partial
    write: it is dropped, or kept with its newline restored when it is a whole record. A bad line
    anywhere else is damage, not an interruption, and is reported with its line number.
    """
    if not target.exists():
        return [], None
    data = target.read_bytes()
    cut = data.rfind(b"\n") + 1
    body, tail = data[:cut], data[cut:]
    records: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(raw: bytes, number: int) -> None:
        record = json.loads(raw.decode("utf-8"))
        rid = record.get("id") if isinstance(record, dict) else None
        if not isinstance(rid, str) or not rid:
            raise DataError("a record needs a non-empty string 'id'", path=target, line=number, field="id")
        if rid in seen:
            raise DataError(f"duplicate record id {rid!r}", path=target, line=number, field="id")
        seen.add(rid)
        records.append(record)

    lines = body.split(b"\n")[:-1]
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            add(raw, number)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(
                f"not a JSON record ({exc}); the file is damaged", path=target, line=number
            ) from None
    if not tail.strip():
        return records, None if not tail else body
    try:
        add(tail, len(lines) + 1)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return records, body  # the interrupted write: drop it, the sample will be evaluated again
    return records, body + tail + b"\n"


def _check_scores(scores: Any, where: str) -> None:
    if scores is None:
        return
    if not isinstance(scores, dict):
        raise ValueError(f"{where}: 'scores' must map metric names to numbers, got {type(scores).__name__}")
    for name, value in scores.items():
        if value is not None and not _is_number(value):
            raise ValueError(f"{where}: scores[{name!r}] must be a number or None, got {value!r}")


# ---------------------------------------------------------------- JSON helpers
def _jsonable(value: Any, where: str, *, nonfinite: str) -> Any:
    """Plain JSON types (numpy scalars and arrays, paths and tuples converted), or an error naming the
    field; non-finite floats become None (``nonfinite="null"``) or an error (``"error"``)."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, str | int | np.integer):
                raise TypeError(f"{where}: key {k!r} must be a string")
            out[str(k)] = _jsonable(v, f"{where}.{k}", nonfinite=nonfinite)
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{where}[{i}]", nonfinite=nonfinite) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where, nonfinite=nonfinite)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        if nonfinite == "null":
            return None
        raise ValueError(f"{where} is {value}, which JSON cannot hold; use None for 'not applicable'")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{where}: {type(value).__name__} is not JSON-serialisable; convert it first")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and math.isfinite(float(value))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _read_json(target: Path) -> Any:
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc}", path=target, line=exc.lineno) from None


# ---------------------------------------------------------------- lock
def _acquire(path: Path) -> IO[str]:
    handle = (path / LOCK).open("a+", encoding="utf-8")
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RunLockedError(
                f"{path} is being written by another evaluation (or another RunFolder in this process); "
                "wait for it, or close() it"
            ) from None
    return handle


def _release(handle: IO[str] | None) -> None:
    if handle is None:
        return
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _fsync_dir(path: Path) -> None:
    """Make a newly created file's directory entry durable too (POSIX; a no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
