"""Load test of `recai serve` on loopback: N concurrent sessions for a bounded time.

The server runs as its own process (`recai serve --llm scripted:stand-in`), so the numbers are the
server's: HTTP, sessions, the turn pool, the agent's planner schema, tools, grounding check and memory,
and the real embedder (the agent picks demonstrations and runs semantic search with it). The LLM is the
rule-based stand-in, which answers instantly. Each virtual user creates a session, chats (alternating
streamed and JSON turns), likes an item, asks /recommend and /items/search, and every few turns deletes
its session and starts a new one. Every non-2xx answer, broken stream or exception counts as an error.
The server gets a private RECAI_HOME (so its profiles and caches stay out of yours); building the item
index there at start-up is not measured.

    python benchmarks/serve_load.py --sessions 8 --duration 20

writes benchmarks/results/serve_load.json. Traffic goes to 127.0.0.1 only and stops by itself.

    python benchmarks/serve_load.py --scale-out --sessions 32 --duration 20

runs the same users against 1 worker (in-process and SQLite store), then 2 and 4 worker processes over
SQLite and over Redis (a private `redis-server` on a free port, append-only file synced every second),
and writes the comparison into the "scale_out" section of the same file. Before a user deletes its
session it reads the session back: every like the server acknowledged must be in the profile
(liked, or disliked by a later message); each one missing counts as lost feedback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from recai.data.atomic import write_text_atomic

MESSAGES = [
    "Something eerie and melancholic",
    "A 90s crime film like Pulp Fiction but shorter",
    "I liked Heat. Something with a heist?",
    "Something funny for a family evening",
    "hello",
    "I didn't like The Godfather. Anything romantic and French?",
    "A slow, beautiful science fiction film",
    "An animated film about friendship",
]
TURNS_PER_SESSION = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


class Recorder:
    def __init__(self) -> None:
        self.latency_ms: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.requests = 0
        self.acknowledged_likes = 0
        self.lost_feedback = 0

    def add(self, kind: str, started: float) -> None:
        self.requests += 1
        self.latency_ms.setdefault(kind, []).append(1000 * (time.perf_counter() - started))

    def fail(self, kind: str, problem: str) -> None:
        self.requests += 1
        self.errors.append(f"{kind}: {problem}"[:300])


async def virtual_user(client: httpx.AsyncClient, number: int, stop_at: float, rec: Recorder) -> None:
    turn = number  # users start at different messages
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        created = await client.post("/sessions", json={"user": f"load-{number}"} if number % 2 else {})
        if created.status_code != 201:
            rec.fail("create_session", f"{created.status_code} {created.text[:200]}")
            await asyncio.sleep(0.5)
            continue
        rec.add("create_session", started)
        sid = created.json()["session_id"]
        acknowledged: set[Any] = set()
        for _ in range(TURNS_PER_SESSION):
            if time.perf_counter() >= stop_at:
                break
            message = MESSAGES[turn % len(MESSAGES)]
            items = await (streamed_turn if turn % 2 else json_turn)(client, sid, message, rec)
            turn += 1
            if items:
                started = time.perf_counter()
                liked = await client.post(
                    f"/sessions/{sid}/feedback", json={"item_id": items[0], "value": "liked"}
                )
                if liked.status_code == 200:
                    rec.add("feedback", started)
                    acknowledged.add(items[0])
                else:
                    rec.fail("feedback", liked.text)
            if turn % 3 == 0:
                started = time.perf_counter()
                recs = await client.post("/recommend", json={"history": items[:2] or ["Heat"], "k": 10})
                rec.add("recommend", started) if recs.status_code == 200 else rec.fail("recommend", recs.text)
                started = time.perf_counter()
                found = await client.get("/items/search", params={"q": message.split()[-1], "k": 10})
                rec.add("search", started) if found.status_code == 200 else rec.fail("search", found.text)
        view = await client.get(f"/sessions/{sid}")
        if view.status_code == 200:
            profile = view.json()["profile"]
            rec.acknowledged_likes += len(acknowledged)
            rec.lost_feedback += len(acknowledged - set(profile["liked"]) - set(profile["disliked"]))
        else:
            rec.fail("get_session", view.text)
        started = time.perf_counter()
        deleted = await client.delete(f"/sessions/{sid}")
        rec.add("delete_session", started) if deleted.status_code == 204 else rec.fail("delete", deleted.text)


async def json_turn(client: httpx.AsyncClient, sid: str, message: str, rec: Recorder) -> list[Any]:
    started = time.perf_counter()
    try:
        response = await client.post("/chat", json={"session_id": sid, "message": message})
    except httpx.HTTPError as exc:
        rec.fail("chat_json", repr(exc))
        return []
    if response.status_code != 200 or not response.json().get("reply"):
        rec.fail("chat_json", f"{response.status_code} {response.text[:200]}")
        return []
    rec.add("chat_json", started)
    return [c["id"] for c in response.json()["items"]]


async def streamed_turn(client: httpx.AsyncClient, sid: str, message: str, rec: Recorder) -> list[Any]:
    started = time.perf_counter()
    first: float | None = None
    events: list[tuple[str, Any]] = []
    buffer = ""
    try:
        async with client.stream(
            "POST", "/chat", json={"session_id": sid, "message": message, "stream": True}
        ) as response:
            if response.status_code != 200:
                rec.fail("chat_stream", f"{response.status_code} {(await response.aread())[:200]!r}")
                return []
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    name = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), "")
                    data = next((line[6:] for line in block.splitlines() if line.startswith("data: ")), "")
                    if name == "delta" and first is None:
                        first = time.perf_counter()
                    if name:
                        events.append((name, json.loads(data)))
    except httpx.HTTPError as exc:
        rec.fail("chat_stream", repr(exc))
        return []
    names = [name for name, _ in events]
    if not names or names[-1] != "done" or "items" not in names:
        rec.fail("chat_stream", f"stream ended with {names[-3:]}")
        return []
    rec.add("chat_stream", started)
    if first is not None:
        rec.latency_ms.setdefault("chat_stream_first_text", []).append(1000 * (first - started))
    return [c["id"] for c in dict(events)["items"]["items"]]


def rss_mib(process: psutil.Process) -> float:
    """The server's resident memory, its worker processes included."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a worker that just exited
            total += child.memory_info().rss
    return total / 2**20


async def sample_memory(process: psutil.Process, samples: list[float], stop_at: float) -> None:
    while time.perf_counter() < stop_at:
        samples.append(rss_mib(process))
        await asyncio.sleep(1.0)


async def drive(
    url: str, sessions: int, duration: float, process: psutil.Process, workers: int = 1
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=sessions + 4, max_keepalive_connections=sessions + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        warm = Recorder()  # lazy parts (demonstration vectors, caches) are built before measuring
        warm_users = max(2, 2 * workers)  # every worker process gets some warm-up traffic
        await asyncio.gather(
            *(virtual_user(client, n, time.perf_counter() + 3, warm) for n in range(warm_users))
        )
        rss_start = rss_mib(process)
        rec, samples = Recorder(), [rss_start]
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(
            sample_memory(process, samples, stop_at),
            *(virtual_user(client, n, stop_at, rec) for n in range(sessions)),
        )
        elapsed = time.perf_counter() - started
        health = (await client.get("/health")).json()
    # every agent turn, JSON or streamed
    rec.latency_ms["chat_turn"] = [
        *rec.latency_ms.get("chat_json", []),
        *rec.latency_ms.get("chat_stream", []),
    ]
    rss_end = rss_mib(process)
    turns = len(rec.latency_ms.get("chat_json", [])) + len(rec.latency_ms.get("chat_stream", []))
    return {
        "elapsed_s": round(elapsed, 1),
        "requests": rec.requests,
        "requests_per_s": round(rec.requests / elapsed, 1),
        "turns": turns,
        "turns_per_s": round(turns / elapsed, 1),
        "errors": len(rec.errors),
        "error_examples": rec.errors[:5],
        "acknowledged_likes": rec.acknowledged_likes,
        "lost_feedback": rec.lost_feedback,
        "latency_ms": {
            kind: {
                "n": len(v),
                "p50": percentile(v, 50),
                "p99": percentile(v, 99),
                "mean": round(statistics.fmean(v), 2),
            }
            for kind, v in sorted(rec.latency_ms.items())
        },
        "memory_mib": {
            "rss_after_warm_up": round(rss_start, 1),
            "rss_peak": round(max([*samples, rss_end]), 1),
            "rss_end": round(rss_end, 1),
            "growth": round(rss_end - rss_start, 1),
        },
        "sessions_alive_after": health["sessions"],
        "warm_up_errors": len(warm.errors),
    }


def serve_and_drive(
    args: argparse.Namespace, *, workers: int, turn_threads: int, store: str | None, home: Path
) -> dict[str, Any]:
    """Start `recai serve` with this setting, run the virtual users, stop it gracefully."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "recai.cli", "serve", "--data", args.data, "--llm", "scripted:stand-in",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--turn-threads", str(turn_threads), "--turn-queue", str(args.turn_queue),
        "--rate-limit", "0", "--max-sessions", "10000",
        *(["--store", store] if store else []),
    ]  # fmt: skip
    scratch = tempfile.TemporaryDirectory(prefix="serve-load-")
    log_path = Path(scratch.name) / "server.log"
    log = log_path.open("w+")
    env = {**os.environ, "RECAI_HOME": str(home)}
    booting = time.perf_counter()
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 600  # the first start may embed the catalog
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        if workers > 1:  # /health answers once one worker is up: wait for the others to load too
            while len(psutil.Process(server.pid).children()) < workers or not _all_ready(log_path, workers):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the workers did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        startup_s = time.perf_counter() - booting
        process = psutil.Process(server.pid)
        result = asyncio.run(drive(url, args.sessions, args.duration, process, workers))
    finally:
        stopping = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        shutdown_s = time.perf_counter() - stopping
    log.close()
    lines = log_path.read_text().splitlines()
    scratch.cleanup()
    result.update(
        startup_s=round(startup_s, 1),
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit code is -15 either way
        shutdown={
            "seconds": round(shutdown_s, 2),
            "graceful": any("Application shutdown complete" in line for line in lines),
            "exit_code": code,
        },
        server_log_lines=len(lines),
    )
    return result


def _all_ready(log_path: Path, workers: int) -> bool:
    return log_path.read_text().count("Application startup complete") >= workers


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}


def config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {
        "sessions": args.sessions,
        "duration_s": args.duration,
        **extra,
        "data": args.data,
        "llm": "scripted:stand-in (instant, rule-based)",
        "embedder": os.environ.get("RECAI_EMBEDDER") or "default (all-MiniLM-L6-v2 on CPU)",
        "turns_per_session": TURNS_PER_SESSION,
        "turn_queue_per_worker": args.turn_queue,
    }


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--scale-out needs redis-server (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)


SCALE_OUT = [  # (workers, store kind)
    (1, "memory"), (1, "sqlite"), (2, "sqlite"), (4, "sqlite"), (2, "redis"), (4, "redis"),
]  # fmt: skip


def scale_out(args: argparse.Namespace, home: Path, scratch: Path) -> dict[str, Any]:
    """1 worker vs 2 and 4 over SQLite and Redis, with the same users; the best against the first."""
    redis, redis_url = start_redis(scratch)
    runs: list[dict[str, Any]] = []
    try:
        for workers, kind in SCALE_OUT:
            if kind == "memory":
                store = "memory"
            elif kind == "sqlite":
                store = f"sqlite:///{scratch / f'sessions-{workers}.sqlite3'}"
            else:
                store = redis_url
            print(f"{workers} worker(s), {kind} store ...", file=sys.stderr)
            result = serve_and_drive(
                args, workers=workers, turn_threads=args.turn_threads, store=store, home=home
            )
            turns = result["latency_ms"]
            runs.append(
                {
                    "workers": workers,
                    "store": kind,
                    "requests_per_s": result["requests_per_s"],
                    "turns_per_s": result["turns_per_s"],
                    "requests": result["requests"],
                    "errors": result["errors"],
                    "error_examples": result["error_examples"],
                    "acknowledged_likes": result["acknowledged_likes"],
                    "lost_feedback": result["lost_feedback"],
                    "turn_latency_ms": {k: turns["chat_turn"][k] for k in ("p50", "p99")},
                    "latency_ms": {k: {"p50": v["p50"], "p99": v["p99"]} for k, v in turns.items()},
                    "rss_peak_mib": result["memory_mib"]["rss_peak"],
                    "startup_s": result["startup_s"],
                    "graceful_shutdown": result["shutdown"]["graceful"],
                }
            )
    finally:
        redis.terminate()
        redis.wait(10)
    baseline = runs[0]["requests_per_s"]
    best = max(runs[1:], key=lambda r: r["requests_per_s"])
    return {
        "runs": runs,
        "baseline": "1 worker, memory store",
        "best": {
            "workers": best["workers"],
            "store": best["store"],
            "requests_per_s": best["requests_per_s"],
        },
        "speedup_best_vs_1_worker": round(best["requests_per_s"] / baseline, 2) if baseline else None,
        "target": "best multi-worker setting >= 1.6x the single worker; 0 errors; 0 lost feedback",
        "config": config(args, turn_threads_per_worker=args.turn_threads),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=8, help="concurrent virtual users")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--turn-threads", type=int, default=4, help="each process's turn pool")
    parser.add_argument(
        "--turn-queue",
        type=int,
        default=64,
        help="turns that may wait per process (at least the sessions, so a busy server queues, not refuses)",
    )
    parser.add_argument("--store", default="memory", help="memory, sqlite:///PATH or redis://HOST:PORT/DB")
    parser.add_argument("--scale-out", action="store_true", help="compare 1, 2 and 4 workers over the stores")
    parser.add_argument("--data", default="demo")
    parser.add_argument(
        "--home", type=Path, default=None, help="RECAI_HOME for the server (default: a temp dir)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve_load.json")
    args = parser.parse_args()
    if not 0 < args.duration <= 600 or not 0 < args.sessions <= 256:
        parser.error("--duration must be in (0, 600] and --sessions in (0, 256]")

    scratch = tempfile.TemporaryDirectory(prefix="serve-load-home-")
    home = args.home or Path(scratch.name) / "home"
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.scale_out:
        section = scale_out(args, home, Path(scratch.name))
        result = {**previous, "scale_out": section}
        shown: dict[str, Any] = section
        problems = sum(r["errors"] + r["lost_feedback"] for r in section["runs"])
    else:
        result = serve_and_drive(
            args, workers=args.workers, turn_threads=args.turn_threads, store=args.store, home=home
        )
        result.update(
            config=config(args, workers=args.workers, turn_threads=args.turn_threads, store=args.store),
            machine=machine(),
        )
        if "scale_out" in previous:  # the other mode's section stays
            result["scale_out"] = previous["scale_out"]
        shown = result
        problems = result["errors"] + result["lost_feedback"]
    scratch.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(shown, indent=2))
    if problems:
        raise SystemExit(f"{problems} errors or lost likes under load (see error_examples)")


if __name__ == "__main__":
    main()
