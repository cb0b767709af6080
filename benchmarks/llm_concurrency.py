"""Throughput of batch LLM work with requests in flight: `recai eval ranking` with an LLM on `demo`.

Part 1 (the target): 200 ranking prompts against the OpenAI-compatible test server of the test suite
(tests/llm/openai_server.py, run in its own process), which answers every request after a fixed
latency (300 ms by default) and serves any number at once, like a batching server. The same run at
concurrency 1, 4, 16 and 32: wall time, requests/s, the speed-up over 1 against the target of
0.8 x N (up to 16), the server's peak of requests in flight, and whether records.jsonl is
byte-identical to the sequential run's.

Part 2 (honest context): a few prompts against the local llama.cpp model at 1 and 2 in flight, then at
1 again (the model loaded and warmed up beforehand, its RAM prompt cache off). An in-process model
computes one reply at a time (calls are serialised behind a lock; two cores cannot run two 1.5B
decodes faster than one), so only the non-model work overlaps.

    python benchmarks/llm_concurrency.py                 # both parts (part 2 takes a few minutes)
    python benchmarks/llm_concurrency.py --local-users 0 # the server part only

writes benchmarks/results/llm_concurrency.json. No response cache is used (every request is sent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test server lives in tests/

from tests.llm.openai_server import ServerState, openai_server, ranking_responder

from recai.data.atomic import write_text_atomic
from recai.evaluate.generative import ListSampling
from recai.evaluate.runners import run_list_eval
from recai.evaluate.runs import RunFolder
from recai.evaluate.sampled import RunSettings
from recai.llm.batch import BatchSettings

RESULT = Path(__file__).parent / "results" / "llm_concurrency.json"


def timed_run(spec: str, out: Path, users: int, concurrency: int) -> dict[str, Any]:
    started = time.perf_counter()
    run_list_eval(
        "ranking",
        spec,
        out,
        sampling=ListSampling(n_users=users),
        settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=concurrency)),
    )
    wall = time.perf_counter() - started
    records = (out / "records.jsonl").read_bytes()
    usage = RunFolder.load(out).read_usage() or {}
    total = usage.get("total", {})
    return {
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "requests": int(total.get("calls", 0)),
        "requests_per_s": round(total.get("calls", 0) / wall, 2),
        "tokens_per_s": round((total.get("prompt_tokens", 0) + total.get("completion_tokens", 0)) / wall, 1),
        "records_sha256": hashlib.sha256(records).hexdigest(),
        "ndcg@10": RunFolder.load(out).read_metrics()["metrics"]["ndcg@10"]["mean"],
    }


def _serve(latency: float, urls: Any, stop: Any) -> None:
    """The test server in its own process, as a real model server would be: its work does not compete
    with the client for this interpreter's lock."""
    with openai_server(ServerState(responder=ranking_responder, latency_s=latency)) as (url, _):
        urls.put(url)
        stop.wait()


def _stats(url: str, *, reset: bool = False) -> dict[str, Any]:
    import httpx

    root = url.rsplit("/v1", 1)[0]
    return httpx.get(f"{root}/_stats" + ("?reset=1" if reset else "")).json()


def server_part(users: int, latency: float, levels: list[int], work: Path) -> dict[str, Any]:
    rows = []
    urls: Any = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(latency, urls, stop), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=60)
        spec = f"llm:openai:{url}#bench-ranker"
        for concurrency in levels:
            _stats(url, reset=True)
            row = timed_run(spec, work / f"server-c{concurrency}", users, concurrency)
            row["server_peak_in_flight"] = _stats(url)["peak_in_flight"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stop.set()
        server.join(timeout=10)
    base = rows[0]
    for row in rows:
        n = row["concurrency"]
        row["speedup"] = round(base["wall_s"] / row["wall_s"], 2)
        row["target_speedup"] = round(0.8 * min(n, 16), 2)
        row["meets_target"] = row["speedup"] >= row["target_speedup"]
        row["identical_records"] = row["records_sha256"] == base["records_sha256"]
    return {
        "users": users,
        "latency_s": latency,
        "ideal_sequential_s": round(users * latency, 1),
        "rows": rows,
    }


def local_part(users: int, work: Path, spec: str) -> dict[str, Any]:
    """The local model at 1 and 2 in flight, then at 1 again: loaded and warmed up first (not timed),
    with llama.cpp's RAM prompt cache off, so no run answers from an earlier run's saved states."""
    from recai.llm.factory import load_chat_model

    model_spec = spec.removeprefix("llm:")
    model_spec += ("&" if "?" in model_spec else "?") + "prompt_cache_mb=0"
    started = time.perf_counter()
    load_chat_model(model_spec).complete([{"role": "user", "content": "Say OK."}], max_tokens=4)
    warm_up_s = round(time.perf_counter() - started, 1)
    rows = []
    for index, concurrency in enumerate([1, 2, 1]):
        row = timed_run(f"llm:{model_spec}", work / f"local-{index}-c{concurrency}", users, concurrency)
        rows.append(row)
        print(json.dumps(row), flush=True)
    for row in rows:
        row["speedup"] = round(rows[0]["wall_s"] / row["wall_s"], 2)
        row["identical_records"] = row["records_sha256"] == rows[0]["records_sha256"]
    return {"model": f"llm:{model_spec}", "users": users, "load_and_warm_up_s": warm_up_s, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--levels", default="1,4,16,32")
    parser.add_argument("--local-users", type=int, default=6, help="0 skips the local-model part")
    parser.add_argument("--local-model", default="llm:local:qwen2.5-1.5b-instruct")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="recai-llm-concurrency-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("RECAI_HOME", str(work / "home"))
        result: dict[str, Any] = {
            "benchmark": "llm_concurrency",
            "task": "recai eval ranking on demo (20 candidates per user, no response cache)",
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.system(),
            },
            "server": server_part(args.users, args.latency, levels, work),
        }
        if args.local_users > 0:
            result["local"] = local_part(args.local_users, work, args.local_model)
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
