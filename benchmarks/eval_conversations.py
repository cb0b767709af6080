"""Simulated-user conversations on `demo`: recai's agent against a plain LLM, Chat-Rec and popularity.

Usage: python benchmarks/eval_conversations.py [--sessions 100] [--turns 3]
       [--simulator local:qwen2.5-1.5b-instruct] [--systems agent:SPEC plain:SPEC chatrec:SPEC popularity]

Every system meets the same simulated users (seeded): each knows its target film only by attributes and
a taste derived from its real history. Run folders go to benchmarks/results/eval/demo-conversations/, a
summary JSON to benchmarks/results/eval_conversations.json, and paired comparisons of the agent against
each baseline (same sessions) into the summary. Runs resume.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from recai.data.atomic import write_text_atomic
from recai.evaluate.compare import compare_runs
from recai.evaluate.prepare import DataOptions
from recai.evaluate.runners import run_conversation_eval
from recai.evaluate.runs import RunFolder

HERE = Path(__file__).resolve().parent
BRAIN = "local:qwen2.5-1.5b-instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--simulator", default=BRAIN)
    parser.add_argument(
        "--systems", nargs="*", default=[f"agent:{BRAIN}", f"plain:{BRAIN}", f"chatrec:{BRAIN}", "popularity"]
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "eval" / "demo-conversations")
    args = parser.parse_args()
    summary: dict = {
        "benchmark": "eval_conversations",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "data": "demo",
        "sessions": args.sessions,
        "max_turns": args.turns,
        "k": args.k,
        "simulator": args.simulator,
        "systems": {},
    }
    folders = {}
    for system in args.systems:
        started = time.perf_counter()
        folder = args.out / system.replace(":", "_")
        run_conversation_eval(
            system,
            folder,
            simulator=args.simulator,
            data=DataOptions("demo"),
            n=args.sessions,
            max_turns=args.turns,
            k=args.k,
        )
        folders[system] = folder
        metrics = RunFolder.load(folder).read_metrics()
        extra = metrics["extra"]
        summary["systems"][system] = {
            "success": metrics["metrics"]["success"],
            "per_turn": metrics["per_turn"],
            "mean_turns_to_success": extra["mean_turns_to_success"],
            "usage_per_session": extra["usage_per_session"],
            "leak_regenerations": extra["leak_regenerations"],
            "masked_turns": extra["masked_turns"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(system, json.dumps(summary["systems"][system]), flush=True)
    agent = next((s for s in folders if s.startswith("agent:")), None)
    if agent is not None:
        summary["paired_vs_agent"] = {}
        for system, folder in folders.items():
            if system == agent:
                continue
            result = compare_runs(folders[agent], folder, force=True)  # same sessions, different systems
            summary["paired_vs_agent"][system] = result.get("metrics", {}).get(
                "success", result.get("metrics")
            )
    target = HERE / "results" / "eval_conversations.json"
    write_text_atomic(target, json.dumps(summary, indent=2, default=str) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
