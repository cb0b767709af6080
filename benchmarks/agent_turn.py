"""Conversational agent cost per turn on `demo`, and tool latency on large synthetic catalogs.

Usage: python benchmarks/agent_turn.py [--llm local:qwen2.5-1.5b-instruct] [--sizes 10000 100000 1000000]
                                       [--out benchmarks/results/agent_turn.json]

Part 1 runs 30 scripted requests (hard conditions, soft conditions, similar-to, item questions,
chit-chat, follow-ups that refine the previous turn) through the real agent and records, per turn: wall
time, LLM time and calls, tokens, tool time, replans, grounding removals and the number of items.
The first turn (model load, index build) is reported separately; p50/p90 are over the warm turns.
Part 2 times the non-LLM path (filter, semantic search with a vector index, ranking) on synthetic
catalogs of the given sizes with random 384-d item vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recai.data.atomic import write_text_atomic

SESSIONS = [
    ["A 90s crime film like Pulp Fiction but shorter", "Which of those is the shortest?"],
    ["Something dark and atmospheric", "Only ones from Japan please"],
    ["Recommend a French romance", "I loved Amélie, something similar?"],
    ["What year was Heat released and who directed it?"],
    ["Hi! How are you today?"],
    ["More films by Christopher Nolan", "Which one is the longest?"],
    ["A funny animated film for kids"],
    ["Something popular from the 80s", "Only sci-fi ones"],
    ["I didn't like Titanic. Recommend a romance instead"],
    ["A Korean thriller", "Anything shorter than two hours?"],
    ["Films about time travel"],
    ["Who stars in The Godfather?"],
    ["A western from before 1970"],
    ["Which is shorter: Alien, Heat or Fargo?"],
    ["Thanks, that's all for today!"],
    ["Something like Spirited Away but not animated"],
    ["A war film from the 2010s", "Anything older?"],
    ["A horror film that is not too long"],
    ["Recommend a musical"],
]


def run_conversations(llm: str) -> dict[str, Any]:
    from recai.agent import Agent

    started = time.perf_counter()
    agent = Agent.from_dataset("demo", llm=llm, progress=False)
    setup_s = time.perf_counter() - started
    turns: list[dict[str, Any]] = []
    catalog_ids = set(agent.dataset.catalog.ids.tolist())
    for messages in SESSIONS:
        session = agent.session()
        for text in messages:
            t = time.perf_counter()
            first_chunk: float | None = None
            stream = agent.chat_stream(session, text)
            for _ in stream:  # the streamed form, as `recai chat` uses it
                if first_chunk is None:
                    first_chunk = time.perf_counter() - t
            wall = time.perf_counter() - t
            result = stream.result
            assert result is not None
            trace = result.trace.to_dict()
            tools_s = sum(s.get("latency_s", 0.0) for s in trace["steps"])
            llm_s = sum(v["latency_s"] for v in trace["llm"].values())
            turns.append(
                {
                    "request": text,
                    "intent": trace["plans"][-1]["intent"],
                    "wall_s": round(wall, 3),
                    "first_text_s": round(first_chunk if first_chunk is not None else wall, 3),
                    "llm_s": round(llm_s, 3),
                    "planner_s": round(trace["llm"].get("planner", {}).get("latency_s", 0.0), 3),
                    "responder_s": round(trace["llm"].get("responder", {}).get("latency_s", 0.0), 3),
                    "non_llm_s": round(wall - llm_s, 3),
                    "tools_s": round(tools_s, 4),
                    "llm_calls": trace["llm_calls"],
                    "prompt_tokens": sum(v["prompt_tokens"] for v in trace["llm"].values()),
                    "completion_tokens": sum(v["completion_tokens"] for v in trace["llm"].values()),
                    "replans": trace["replans"],
                    "items": len(result.items),
                    "all_items_in_catalog": all(i in catalog_ids for i in result.items),
                    "grounding_removed": len(trace.get("grounding", {}).get("removed", [])),
                    "steps": [s["tool"] for s in trace["steps"]],
                }
            )
            print(json.dumps(turns[-1]), flush=True)
    warm = turns[1:]
    recommend = [t for t in warm if t["intent"] == "recommend"]

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 3) if values else float("nan")

    return {
        "llm": llm,
        "setup_s": round(setup_s, 1),
        "first_turn_wall_s": turns[0]["wall_s"],
        "turns": len(turns),
        "warm_wall_s_p50": pct([t["wall_s"] for t in warm], 50),
        "warm_wall_s_p90": pct([t["wall_s"] for t in warm], 90),
        "warm_first_text_s_p50": pct([t["first_text_s"] for t in warm], 50),
        "warm_llm_s_p50": pct([t["llm_s"] for t in warm], 50),
        "warm_planner_s_p50": pct([t["planner_s"] for t in warm], 50),
        "warm_responder_s_p50": pct([t["responder_s"] for t in warm if t["responder_s"] > 0], 50),
        "warm_non_llm_s_p50": pct([t["non_llm_s"] for t in warm], 50),
        "recommend_turns": len(recommend),
        "llm_calls_per_recommend_turn_max": max((t["llm_calls"] for t in recommend), default=0),
        "llm_calls_per_recommend_turn_mean": round(statistics.mean(t["llm_calls"] for t in recommend), 2)
        if recommend
        else None,
        "replans": sum(t["replans"] for t in turns),
        "turns_with_items": sum(t["items"] > 0 for t in turns),
        "all_items_in_catalog": all(t["all_items_in_catalog"] for t in turns),
        "grounding_removals": sum(t["grounding_removed"] for t in turns),
        "per_turn": turns,
    }


def synthetic_dataset(n: int, seed: int = 0) -> Any:
    from recai.data import Catalog, CatalogSchema, ColumnRole, ColumnSpec, Dataset, Interactions

    rng = np.random.default_rng(seed)
    genres = np.array(["Action", "Comedy", "Crime", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller"])
    frame = pd.DataFrame(
        {
            "item_id": np.arange(n),
            "title": [f"Item {i}" for i in range(n)],
            "year": rng.integers(1920, 2024, n),
            "genres": [list(genres[rng.choice(8, size=2, replace=False)]) for _ in range(n)],
            "runtime": rng.integers(70, 200, n),
            "language": rng.choice(["English", "French", "Japanese", "Korean"], n),
        }
    )
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="item_id", role=ColumnRole.ID),
            ColumnSpec(name="title", role=ColumnRole.TITLE),
            ColumnSpec(name="year", role=ColumnRole.NUMERIC),
            ColumnSpec(name="genres", role=ColumnRole.MULTI_CATEGORICAL),
            ColumnSpec(name="runtime", role=ColumnRole.NUMERIC),
            ColumnSpec(name="language", role=ColumnRole.CATEGORICAL),
        ]
    )
    catalog = Catalog(frame, schema)
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, 5000, 50_000),
            "item_id": rng.integers(0, n, 50_000),
            "timestamp": np.arange(50_000),
        }
    )
    return Dataset(f"synthetic-{n}", catalog, Interactions(events, catalog.ids))


def tool_latency(n: int) -> dict[str, Any]:
    from recai.agent.bus import CandidateBus
    from recai.agent.context import AgentContext, AgentResources, AgentSettings
    from recai.agent.tools.ranking import RankTool
    from recai.agent.tools.retrieval import SemanticSearchTool
    from recai.agent.tools.sql import FilterTool
    from recai.embed import VectorIndex

    class RandomQueryEncoder:
        dim, identity = 384, "random-384"

        def encode(self, texts: list[str], kind: str = "query") -> np.ndarray:
            v = np.random.default_rng(len(texts[0])).standard_normal((1, 384)).astype(np.float32)
            return v / np.linalg.norm(v)

    t = time.perf_counter()
    ds = synthetic_dataset(n)
    build_catalog_s = time.perf_counter() - t
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((n, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    t = time.perf_counter()
    index = VectorIndex(384, hnsw_m=16, ef_construction=80, ef_search=64)
    index.add(list(range(n)), vectors)
    index_build_s = time.perf_counter() - t
    resources = AgentResources(ds, AgentSettings(retrieve_k=50), progress=False, encoder=RandomQueryEncoder())
    resources.item_index = index
    ctx = AgentContext(resources)
    runs: dict[str, list[float]] = {"filter": [], "semantic_search": [], "rank": [], "pipeline": []}
    for _ in range(5):
        bus = CandidateBus(n)
        t0 = time.perf_counter()
        FilterTool().run(
            {"where": "year BETWEEN 1990 AND 1999 AND list_contains(genres, 'Crime') AND runtime < 120"},
            bus,
            ctx,
            1,
        )
        t1 = time.perf_counter()
        SemanticSearchTool().run({"query": "dark and atmospheric"}, bus, ctx, 2)
        t2 = time.perf_counter()
        RankTool().run({"by": "popularity"}, bus, ctx, 3)
        t3 = time.perf_counter()
        runs["filter"].append(t1 - t0)
        runs["semantic_search"].append(t2 - t1)
        runs["rank"].append(t3 - t2)
        runs["pipeline"].append(t3 - t0)
    return {
        "items": n,
        "catalog_build_s": round(build_catalog_s, 2),
        "index_kind": index.kind,
        "index_build_s": round(index_build_s, 2),
        **{f"{k}_ms_median": round(1000 * statistics.median(v), 2) for k, v in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="local:qwen2.5-1.5b-instruct")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--skip-conversations", action="store_true")
    parser.add_argument(
        "--keep-tools",
        action="store_true",
        help="reuse tool_latency from the existing --out file instead of rebuilding the large catalogs",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "agent_turn.json")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "agent_turn",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
    }
    if not args.skip_conversations:
        report["conversations"] = run_conversations(args.llm)
    report["tool_latency"] = []
    if args.keep_tools and args.out.exists():
        report["tool_latency"] = json.loads(args.out.read_text(encoding="utf-8")).get("tool_latency", [])
    for n in [] if args.keep_tools else args.sizes:
        row = tool_latency(n)
        print(json.dumps(row), flush=True)
        report["tool_latency"].append(row)
    conv = report.get("conversations", {})
    report["targets"] = {
        "llm_calls_per_recommend_turn_at_most_2": conv.get("llm_calls_per_recommend_turn_max", 0) <= 2
        if conv
        else None,
        "warm_turn_p50_under_3s": conv.get("warm_wall_s_p50", 1e9) < 3.0 if conv else None,
        "non_llm_under_50ms_at_100k": next(
            (r["pipeline_ms_median"] < 50 for r in report["tool_latency"] if r["items"] == 100_000), None
        ),
    }
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
