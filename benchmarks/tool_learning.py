"""Tool learning: does a fine-tuned 0.5B planner plan like the 1.5B teacher?

Usage: python benchmarks/tool_learning.py [--data demo] [--teacher local:qwen2.5-1.5b-instruct]
           [--student qwen2.5-0.5b-instruct] [--per-shape 30] [--sessions 0] [--eval-sessions 20]
           [--attempts 1] [--retry-temperature 0.7]
           [--work runs/tool-learning] [--out benchmarks/results/tool_learning.json]

Runs the loop of `recai agent record | distill | eval-planner` (the same functions, called directly):

1. record the teacher on templated requests of every plan shape (and simulated sessions if asked),
   retrying failed templated conversations with a sampling teacher when ``--attempts`` > 1;
2. filter, deduplicate, balance and split; LoRA-fine-tune the student and merge it;
3. evaluate on the held-out teacher plans, and in simulated sessions: the teacher, the student before
   fine-tuning and after (plan validity, exact and step match, simulated success).

Every stage resumes: rerunning skips recorded conversations, resumes training from its checkpoint and
skips evaluated plans. Writes the JSON and a Markdown report next to it (``.md``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from recai.agent import commands
from recai.data.atomic import write_text_atomic


def run(args: argparse.Namespace) -> dict[str, Any]:
    from recai.train.models import resolve_base

    work = Path(args.work)
    started = time.perf_counter()
    commands.record(
        data=args.data,
        out=work / "trajectories",
        teacher=args.teacher,
        per_shape=args.per_shape,
        sessions=args.sessions,
        simulator=args.simulator,
        turns=args.turns,
        seed=args.seed,
        encoder_spec=args.encoder,
        attempts=args.attempts,
        temperature=args.retry_temperature,
    )
    recorded_s = time.perf_counter() - started
    base = Path(args.student) if Path(args.student).is_dir() else resolve_base(args.student)
    commands.distill(
        runs=[work / "trajectories"],
        out=work / "distilled",
        base=str(base),
        method="lora",
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=None,
        lora_r=None,
        max_length=args.max_length,
        save_steps=None,
        device=args.device,
        precision=args.precision,
        grad_accum=args.grad_accum,
        gradient_checkpointing=args.gradient_checkpointing,
        max_per_shape=args.max_per_shape,
        test_share=args.test_share,
        dedup=95.0,
        repaired=False,
        seed=args.seed,
        overwrite=False,
    )
    distilled_s = time.perf_counter() - started - recorded_s
    planner = work / "distilled" / "planner"
    # The students are read free (no grammar): a grammar makes any model's output schema-valid, which
    # would hide what fine-tuning taught. --constrained adds both students as the agent runs them.
    free, grammar = f"?dtype={args.dtype}&use_grammar=false", f"?dtype={args.dtype}"
    models = [
        f"teacher={args.teacher}",
        f"student-before=hf:{base}{free}",
        f"student-after=hf:{planner}{free}",
    ]
    if args.constrained:
        models += [
            f"student-before-grammar=hf:{base}{grammar}",
            f"student-after-grammar=hf:{planner}{grammar}",
        ]
    commands.eval_planner(
        distilled=work / "distilled",
        model=models,
        data=args.data,
        out=work / "eval",
        limit=args.limit,
        max_tokens=300,
        sessions=args.eval_sessions,
        simulator=args.simulator,
        llm=args.teacher,  # the responder stays the teacher: only the planner changes
        turns=args.turns,
        seed=args.seed,
        encoder_spec=args.encoder,
    )
    summary = json.loads((work / "eval" / "summary.json").read_text())
    for name, entry in summary["models"].items():
        entry["cost"] = _cost(work / "eval" / name / "plans" / "records.jsonl")
    distill_info = json.loads((work / "distilled" / "distill.json").read_text())
    return {
        "config": {**vars(args), "student_path": str(base)},
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "data": distill_info["data"],
        "training": {
            k: distill_info["training"].get(k)
            for k in ("steps", "train_loss", "seconds_this_run", "tokens_per_second", "device", "precision")
        },
        "recording": _recording(work / "trajectories" / "records.jsonl"),
        "evaluation": summary,
        # this invocation only: a rerun resumes the recording and reuses the adapter, so it can be ~0;
        # the training cost is in "training"
        "seconds_this_invocation": {"record": round(recorded_s, 1), "distill": round(distilled_s, 1)},
    }


def _recording(path: Path) -> dict[str, dict[str, int]]:
    """Per templated shape: conversations, how many the greedy teacher got right, and how many after
    the sampled retries (the rest never reach the training data)."""
    out: dict[str, dict[str, int]] = {}
    ok: dict[str, bool] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        shape = str(record.get("shape") or record.get("source"))
        entry = out.setdefault(shape, {"conversations": 0, "greedy_success": 0, "retries": 0, "success": 0})
        conversation = str(record.get("conversation") or record["id"])
        if int(record.get("attempt") or 1) == 1:
            entry["conversations"] += 1
            entry["greedy_success"] += bool(record["success"])
        else:
            entry["retries"] += 1
        if record["success"] and not ok.get(conversation):
            entry["success"] += 1
        ok[conversation] = ok.get(conversation, False) or bool(record["success"])
    return dict(sorted(out.items()))


def _cost(path: Path) -> dict[str, Any]:
    """What each plan cost: wall seconds, tokens written, and how many needed a validated retry."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    latency = [float(r["latency_s"]) for r in records if r.get("latency_s") is not None]
    tokens = [int(r["completion_tokens"]) for r in records if r.get("completion_tokens") is not None]
    return {
        "plans": len(records),
        "mean_latency_s": round(sum(latency) / len(latency), 2) if latency else None,
        "mean_completion_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "valid_first_attempt": sum(
            1 for r in records if r.get("plan") is not None and r.get("attempts", 1) == 1
        ),
        "hit_max_tokens": sum(1 for r in records if r.get("completion_tokens") == 300),
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Tool learning",
        "",
        f"Teacher `{result['config']['teacher']}`, student `{result['config']['student']}` on "
        f"`{result['config']['data']}`; {result['evaluation']['held_out']} held-out teacher plans.",
        "",
        "| planner | schema valid | executable | exact | same tools | step F1 | simulated success |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in result["evaluation"]["models"].items():
        p = entry["plans"]
        sim = entry.get("simulated")
        rate = f"{sim['successes']}/{sim['sessions']}" if sim else "-"
        lines.append(
            f"| {name} | {p['schema_valid']:.2f} | {p['executable']:.2f} | {p['exact']:.2f} | "
            f"{p['tools']:.2f} | {p['step_f1']:.2f} | {rate} |"
        )
    lines += [
        "",
        "| planner | mean s per plan | mean tokens written | valid at first attempt | cut at 300 tokens |",
        "|---|---|---|---|---|",
    ]
    for name, entry in result["evaluation"]["models"].items():
        c = entry.get("cost") or {}
        lines.append(
            f"| {name} | {c.get('mean_latency_s')} | {c.get('mean_completion_tokens')} | "
            f"{c.get('valid_first_attempt')}/{c.get('plans')} | {c.get('hit_max_tokens')} |"
        )
    t = result["training"]
    lines += [
        "",
        f"Training: {t['steps']} steps, {t['seconds_this_run']} s on {t['device']} ({t['precision']}), "
        f"{t['tokens_per_second']} tokens/s, final loss {t['train_loss']:.3f}.",
    ]
    recording = result.get("recording")
    if recording:
        lines += [
            "",
            f"Recording (teacher successes per templated shape, greedy, then after sampled retries; up to "
            f"{result['config'].get('attempts', 1)} attempts at temperature "
            f"{result['config'].get('retry_temperature', '-')}):",
            "",
            "| shape | conversations | greedy success | retries | success after retries |",
            "|---|---|---|---|---|",
        ]
        for shape, r in recording.items():
            counts = (r["conversations"], r["greedy_success"], r["retries"], r["success"])
            lines.append(f"| {shape} | " + " | ".join(str(c) for c in counts) + " |")
    shapes = result["data"]["shapes"]
    lines += ["", f"Training shapes: {shapes['train']}", f"Held-out shapes: {shapes['test']}", ""]
    lines.append(f"Filter: {result['data']['filter']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="demo")
    parser.add_argument("--teacher", default="local:qwen2.5-1.5b-instruct")
    parser.add_argument("--student", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--simulator", default="local:qwen2.5-1.5b-instruct")
    parser.add_argument("--per-shape", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=0, help="simulated sessions to record")
    parser.add_argument("--eval-sessions", type=int, default=20, help="simulated sessions per planner")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=1, help="tries per templated conversation")
    parser.add_argument("--retry-temperature", type=float, default=0.7)
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=None, help="held-out plans to evaluate")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--max-per-shape", type=int, default=None, help="cap per plan shape (default 2x median)"
    )
    parser.add_argument("--grad-accum", type=int, default=None)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--precision", default=None, help="training precision (default: auto)")
    parser.add_argument(
        "--dtype", default="auto", help="the students' dtype at evaluation (auto: bf16 where native)"
    )
    parser.add_argument(
        "--constrained", action="store_true", help="also evaluate the students with a grammar"
    )
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/tool-learning")
    parser.add_argument("--out", default="benchmarks/results/tool_learning.json")
    args = parser.parse_args()
    result = run(args)
    out = Path(args.out)
    write_text_atomic(out, json.dumps(result, indent=2, default=str) + "\n")
    write_text_atomic(out.with_suffix(".md"), report(result))
    print(report(result))


if __name__ == "__main__":
    main()
