"""Second device run: generation on a LoRA-trained Qwen2.5-0.5B-shaped random model with the automatic
token budget, counting violations among complete spans (greedy, beam 4, sampling), free vs constrained.

Run from the repository root: `PYTHONPATH=src:. python benchmarks/gen_cuda/check_generate.py`
(`--smoke`: tiny, on CPU). Results of one H100 run: benchmarks/results/gen/cuda_h100_generate.json."""

# ruff: noqa: E402  (a device script: it reads its settings before importing the heavy modules)
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

SMOKE = "--smoke" in sys.argv
OUT = Path(os.environ.get("OUT", ".gpu/out"))
OUT.mkdir(parents=True, exist_ok=True)
DEV = "cpu" if SMOKE else "cuda"

from recai.data import load
from recai.gen.evaluation import DecodeConfig, evaluate_generation, token_budget
from recai.gen.generate import GenRecommender
from recai.gen.tasks import build_gen_data
from recai.gen.training import train_sft
from recai.train.sft import SFTConfig

W = Path("/tmp/gencheck2")
shutil.rmtree(W, ignore_errors=True)
W.mkdir()
from tests.gen.tiny import save_shaped_qwen

size = save_shaped_qwen(W / "base", smoke=SMOKE)
demo = load("demo")
data = build_gen_data(demo, per_task=64, test_per_task=16, noun="film", progress=False)
r = train_sft(
    data,
    W / "lora",
    SFTConfig(
        base_model=str(W / "base"),
        max_steps=8 if SMOKE else 120,
        batch_size=8,
        learning_rate=1e-3,
        logging_steps=20,
        save_steps=1000,
        max_length=2048,
        device=None if DEV == "cuda" else "cpu",
    ),
    progress=False,
)
result = {
    "sft": {
        k: r.summary["training"][k]
        for k in ("steps", "seconds_this_run", "tokens_per_second", "train_loss", "precision")
    }
}
g = GenRecommender.load(
    W / "lora", demo.catalog, dtype="bfloat16" if DEV == "cuda" else "float32", device=DEV
)
tests = [x for x in data.test if x.task == "sequential"][:16]
result["budget_tokens"] = token_budget(g, tests[0])
for label, dc in (
    ("free", DecodeConfig(constrained=False, batch_size=16)),
    ("constrained", DecodeConfig(batch_size=16)),
    ("constrained_beam4", DecodeConfig(num_beams=4, batch_size=16)),
    ("constrained_sample", DecodeConfig(do_sample=True, temperature=0.8, batch_size=16)),
):
    evaluate_generation(g, tests[:2], dc, progress=False)
    if DEV == "cuda":
        torch.cuda.synchronize()
    t = time.time()
    recs = evaluate_generation(g, tests, dc, progress=False)
    if DEV == "cuda":
        torch.cuda.synchronize()
    sec = time.time() - t
    complete_invalid = sum(rec["counts"]["invalid"] - int(rec["partial_span"]) for rec in recs)
    result[label] = {
        "seconds": round(sec, 2),
        "new_tokens": sum(x["new_tokens"] for x in recs),
        "tokens_per_second": round(sum(x["new_tokens"] for x in recs) / sec, 1),
        "validity": round(sum(x["scores"]["validity"] for x in recs) / len(recs), 3),
        "partial_spans": sum(x["partial_span"] for x in recs),
        "finished": sum(x["finished"] for x in recs),
        "invalid_complete_spans": complete_invalid,
        "duplicates": sum(x["counts"]["duplicate"] for x in recs),
        "already_seen": sum(x["counts"]["already_seen"] for x in recs),
        "named": sum(x["counts"]["named"] for x in recs),
        "count_correct": round(sum(x["scores"]["count_correct"] for x in recs) / len(recs), 3),
        "sample": recs[0]["text"][:400],
    }
    print(label, {k: v for k, v in result[label].items() if k != "sample"}, flush=True)
    (OUT / "gpu_check2.json").write_text(json.dumps(result, indent=2))
