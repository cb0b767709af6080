"""Speed of the offline chat models on each local backend: load, prefill, decode, and the cost of
schema-constrained decoding.

Usage: python benchmarks/llm_backends.py [--models smollm2-135m-instruct qwen2.5-0.5b-instruct ...]
                                         [--backends llamacpp hf] [--out benchmarks/results/llm_backends.json]

For each (model, backend):
- load_s: time to construct the ChatModel (transformers dequantises the GGUF on load);
- prefill_tok_s: prompt tokens / latency of a call that generates 1 token from a ~400-token prompt;
- decode_tok_s: (completion tokens - 1) / (latency - that prefill latency), greedy, free text;
- schema_decode_tok_s: the same for a small planning-like JSON schema (grammar-constrained), with the
  share of replies that were schema-valid on the first attempt.
Medians over --repeats runs. Threads: all cores (2 here).
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

from recai.data.atomic import write_text_atomic
from recai.llm.base import ChatModel
from recai.llm.resolve import resolve_model

PROMPT = (
    "You are a film recommender. The user has watched: "
    + ", ".join(["Pulp Fiction", "Heat", "Fargo", "Goodfellas", "Se7en", "The Usual Suspects"] * 8)
    + ". Suggest one more film and explain why in two sentences."
)
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "tool": {"enum": ["sql_filter", "semantic_search", "rank_by_popularity"]},
                    "argument": {"type": "string", "maxLength": 60},
                },
                "required": ["tool", "argument"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["steps"],
    "additionalProperties": False,
}


def build(model: str, backend: str) -> ChatModel:
    path = resolve_model(model, progress=False)
    if backend == "llamacpp":
        from recai.llm.llamacpp import LlamaCppChatModel

        return LlamaCppChatModel(path, name=model, n_ctx=2048, n_threads=os.cpu_count() or 2)
    from recai.llm.hf import HFChatModel

    return HFChatModel(path, name=model)


def measure(chat: ChatModel, repeats: int, decode_tokens: int) -> dict[str, Any]:
    # Each measured prompt starts differently, so no KV-cache reuse (prefix or RAM cache) flatters prefill.
    def fresh(i: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Request {i} of the benchmark. {PROMPT}"}]

    messages = fresh(0)
    chat.complete(messages, max_tokens=1)  # warm-up
    prefill = [chat.complete(fresh(100 + i), max_tokens=1) for i in range(repeats)]
    prefill_s = statistics.median(r.latency_s for r in prefill)
    prompt_tokens = prefill[0].prompt_tokens
    free = [chat.complete(fresh(200 + i), max_tokens=decode_tokens) for i in range(repeats)]
    decode = [(r.completion_tokens - 1) / max(r.latency_s - prefill_s, 1e-6) for r in free]
    plan_request = [
        {"role": "user", "content": "Plan tool calls for: a 90s crime film like Heat but shorter."}
    ]
    schema_runs, first_try = [], 0
    for i in range(repeats):
        request = [{"role": "user", "content": f"({i}) {plan_request[0]['content']}"}]
        result = chat.complete(request, response_format=PLAN_SCHEMA, max_tokens=160)
        first_try += result.attempts == 1
        schema_runs.append(result.completion_tokens / max(result.latency_s, 1e-6))
    return {
        "prompt_tokens": prompt_tokens,
        "prefill_tok_s": round(prompt_tokens / prefill_s, 1),
        "decode_tok_s": round(statistics.median(decode), 1),
        "decode_tokens": statistics.median(r.completion_tokens for r in free),
        "schema_decode_tok_s": round(statistics.median(schema_runs), 1),
        "schema_valid_first_try": f"{first_try}/{repeats}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["smollm2-135m-instruct", "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct"],
    )
    parser.add_argument("--backends", nargs="+", default=["llamacpp", "hf"], choices=["llamacpp", "hf"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llm_backends.json")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for model in args.models:
        for backend in args.backends:
            start = time.perf_counter()
            try:
                chat = build(model, backend)
            except Exception as exc:  # a missing optional backend is reported, not fatal
                results.append({"model": model, "backend": backend, "error": str(exc)})
                continue
            row = {"model": model, "backend": backend, "load_s": round(time.perf_counter() - start, 2)}
            row.update(measure(chat, args.repeats, args.decode_tokens))
            chat.close()
            print(json.dumps(row))
            results.append(row)
    report = {
        "benchmark": "llm_backends",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "repeats": args.repeats,
        "results": results,
    }
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
