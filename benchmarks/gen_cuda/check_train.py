"""Device check for recai.gen: CUDA correctness on a tiny model, then timings of the same recipe on a
randomly initialised model shaped like Qwen2.5-0.5B. Writes JSON to $OUT (or ./.gpu/out).

Run from the repository root: `PYTHONPATH=src:. python benchmarks/gen_cuda/check_train.py` (`--smoke`: a
tiny CPU version of the same steps). Results of one H100 run: benchmarks/results/gen/cuda_h100_train.json."""

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
result: dict = {"torch": torch.__version__, "device": DEV}
import peft
import transformers

result["transformers"] = transformers.__version__
result["peft"] = peft.__version__
if DEV == "cuda":
    result["gpu"] = torch.cuda.get_device_name(0)
WORK = Path("/tmp/gencheck")
shutil.rmtree(WORK, ignore_errors=True)
WORK.mkdir()


def save():
    (OUT / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))


from tests.gen.tiny import biased_head, tiny_model, tiny_tokenizer

from recai.data import load
from recai.gen.evaluation import DecodeConfig, evaluate_generation
from recai.gen.generate import GenRecommender
from recai.gen.items import add_item_tokens
from recai.gen.models import load_gen_model, merge_adapter
from recai.gen.tasks import build_gen_data
from recai.gen.training import train_sft
from recai.train.sft import SFTConfig

demo = load("demo")
# ---------------------------------------------------------------- 1. CUDA correctness, tiny model
t0 = time.time()

tok = tiny_tokenizer()
m = tiny_model(tok, seed=2)
s, e = add_item_tokens(tok, m)
biased_head(m, [s, e])
gen = GenRecommender(m.to(DEV), tok, demo.catalog, name="tiny")
checks = {}
for name, kw in {
    "greedy": {},
    "beam4": {"num_beams": 4},
    "sample": {"do_sample": True, "temperature": 1.2, "seed": 0},
}.items():
    outs = gen.generate(
        [[{"role": "user", "content": "films"}]] * 6,
        exclude=[[0, 1, 2]] * 6,
        max_new_tokens=120,
        batch_size=6,
        **kw,
    )
    bad = 0
    named = 0
    for o in outs:
        comp = o.parsed.positions[:-1] if o.parsed.partial else o.parsed.positions
        bad += sum(p is None for p in comp) + (len(comp) - len(set(comp))) + len(set(comp) & {0, 1, 2})
        named += len(comp)
    checks[name] = {"named": named, "violations": bad}
result["constrained_cuda"] = checks
data_small = build_gen_data(
    demo,
    ["category_cold", "item_category", "count"],
    per_task=16,
    test_per_task=8,
    k=3,
    min_k=2,
    history_len=3,
    progress=False,
)
tiny_base = WORK / "tiny-base"
tm = tiny_model(tok := tiny_tokenizer(), seed=0)
tm.save_pretrained(tiny_base)
tok.save_pretrained(tiny_base)
r = train_sft(
    data_small,
    WORK / "tiny-lora",
    SFTConfig(
        base_model=str(tiny_base),
        max_steps=30,
        batch_size=8,
        learning_rate=5e-2,
        logging_steps=5,
        save_steps=10,
        max_length=1024,
        device=None if DEV == "cuda" else "cpu",
    ),
    progress=False,
)
curve = [p["loss"] for p in r.summary["training"]["loss_curve"]]
merge_adapter(WORK / "tiny-lora", WORK / "tiny-merged", dtype="float32")
a, at = load_gen_model(WORK / "tiny-lora", device=DEV)
b, _ = load_gen_model(WORK / "tiny-merged", device=DEV)
ids = at("<|item_start|>Heat (1995)<|item_end|>", return_tensors="pt")["input_ids"].to(DEV)
with torch.no_grad():
    diff = float((a(ids).logits - b(ids).logits).abs().max())
result["tiny_sft_cuda"] = {
    "precision": r.summary["training"]["precision"],
    "device": r.summary["training"]["device"],
    "loss_first": curve[0],
    "loss_last": curve[-1],
    "merge_max_abs_diff": diff,
    "seconds": round(time.time() - t0, 1),
}
save()
print(json.dumps(result, indent=1), flush=True)

# ---------------------------------------------------------------- 2. timing, Qwen2.5-0.5B-shaped random model
from tests.gen.tiny import save_shaped_qwen

qbase = WORK / "qwen-shape"
size = save_shaped_qwen(qbase, smoke=SMOKE)
result["shape"] = size
data = build_gen_data(demo, per_task=64, test_per_task=16, noun="film", progress=False)
timing = {}
for method, steps, lr in (("lora", 8 if SMOKE else 40, 2e-4), ("full", 4 if SMOKE else 20, 2e-5)):
    t = time.time()
    r = train_sft(
        data,
        WORK / f"q-{method}",
        SFTConfig(
            base_model=str(qbase),
            method=method,
            max_steps=steps,
            batch_size=8,
            learning_rate=lr,
            logging_steps=10,
            save_steps=1000,
            max_length=2048,
            device=None if DEV == "cuda" else "cpu",
        ),
        progress=False,
    )
    tr = r.summary["training"]
    timing[method] = {
        "steps": tr["steps"],
        "seconds": tr["seconds_this_run"],
        "tokens": tr["tokens_this_run"],
        "tokens_per_second": tr["tokens_per_second"],
        "precision": tr["precision"],
        "trainable": tr["trainable_parameters"],
        "parameters": tr["parameters"],
        "wall_with_load_and_save": round(time.time() - t, 1),
        "mean_tokens_per_example": round(r.summary["data"]["tokens"] / r.summary["data"]["encoded"], 1),
    }
    if DEV == "cuda":
        timing[method]["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
    result["sft_timing"] = timing
    save()
    print(method, timing[method], flush=True)
gq = GenRecommender.load(
    WORK / "q-lora", demo.catalog, dtype="bfloat16" if DEV == "cuda" else "float32", device=DEV
)
tests = [x for x in data.test if x.task == "sequential"][:16]
gen_timing = {}
for label, dc in (
    ("free", DecodeConfig(constrained=False, batch_size=16, max_new_tokens=128)),
    ("constrained", DecodeConfig(constrained=True, batch_size=16, max_new_tokens=128)),
    ("constrained_beam4", DecodeConfig(constrained=True, num_beams=4, batch_size=16, max_new_tokens=128)),
):
    evaluate_generation(gq, tests[:2], dc, progress=False)  # warm-up
    if DEV == "cuda":
        torch.cuda.synchronize()
    t = time.time()
    recs = evaluate_generation(gq, tests, dc, progress=False)
    if DEV == "cuda":
        torch.cuda.synchronize()
    sec = time.time() - t
    new = sum(r_["new_tokens"] for r_ in recs)
    gen_timing[label] = {
        "seconds": round(sec, 2),
        "new_tokens": new,
        "tokens_per_second": round(new / sec, 1),
        "validity": round(sum(r_["scores"]["validity"] for r_ in recs) / len(recs), 3),
    }
    print(label, gen_timing[label], flush=True)
result["generate_timing"] = gen_timing
result["total_seconds"] = round(time.time() - t0, 1)
save()
print(json.dumps(result, indent=1))
