"""Device check for the training-cost changes of 2026-11-27 (``recai.train.label_logits`` and length-grouped
batches) on a randomly initialised model shaped like Qwen2.5-0.5B (bf16, 152k-token vocabulary).

On the CPU with SmolLM2-135M (49k vocabulary) logits at trained positions only saved 6% of an epoch
(``benchmarks/train_speed.py``); the head is a larger share of a step with Qwen's vocabulary, so this measures
it where it matters. Two parts:

1. On CUDA in bf16: the loss from logits kept at the trained positions equals the model's own loss on full
   logits, and so do the gradients of the LoRA weights.
2. One epoch over the same examples for each variant (random batches with full logits, grouped batches
   with full logits, grouped with kept logits), LoRA and full fine-tuning, after an untimed warm-up: wall
   seconds, tokens per second (padding excluded) and peak GPU memory; with ``--repeats N`` each variant
   runs N times (every other round in reverse order) and the median counts.

Writes JSON to $OUT/train_speed_check.json (or ./.gpu/out) after every part; a failing part is recorded
under ``errors``. Run from the repository root:
`PYTHONPATH=src:. python benchmarks/gen_cuda/check_train_speed.py` (`--smoke`: a tiny CPU version of
the same steps). Needs torch, transformers and peft; no weights, no network.
"""

# ruff: noqa: E402  (a device script: it reads its settings before importing the heavy modules)
from __future__ import annotations

import random
import shutil
import statistics
import sys
import time
from typing import Any

import torch
from benchmarks.device_report import DeviceReport

report = DeviceReport("train_speed_check.json", work="/tmp/trainspeedcheck")
SMOKE, DEV, WORK, result = report.smoke, report.device, report.work, report.result
REPEATS = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 1
checks: dict[str, bool] = {}
result["checks"] = checks

import transformers
from tests.gen.tiny import save_shaped_qwen

from recai.data import load
from recai.gen.tasks import build_gen_data
from recai.gen.training import train_sft
from recai.train import label_logits
from recai.train.chat import IGNORE_INDEX
from recai.train.sft import SFTConfig

result["transformers"] = transformers.__version__
PRECISION = "fp32" if SMOKE else "bf16"
base = WORK / "base"
result["shape"] = save_shaped_qwen(base, smoke=SMOKE)

# ---------------------------------------------------------------- 1. kept-logits loss on the device
try:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if SMOKE else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(DEV)
    model = get_peft_model(
        model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    input_ids = torch.randint(5, vocab, (4, 96), generator=generator).to(DEV)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, (start, stop) in enumerate(((60, 80), (70, 96), (40, 50), (88, 96))):
        labels[row, start:stop] = input_ids[row, start:stop]
    lora = [p for p in model.parameters() if p.requires_grad]

    full = model(input_ids=input_ids, labels=labels).loss
    full_grads = torch.autograd.grad(full, lora)
    positions = label_logits.loss_positions(labels)
    kept_logits = model(input_ids=input_ids, logits_to_keep=positions).logits
    kept = label_logits.causal_loss_at(kept_logits, labels, positions)
    kept_grads = torch.autograd.grad(kept, lora)
    worst = max(
        float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))
        for a, b in zip(kept_grads, full_grads, strict=True)
    )
    result["kept_logits_parity"] = {
        "positions_kept": int(positions.numel()),
        "sequence_length": int(input_ids.shape[1]),
        "kept_logits_shape": list(kept_logits.shape),
        "loss_full": float(full),
        "loss_kept": float(kept),
        "worst_relative_gradient_difference": worst,
    }
    checks["kept_loss_equals_full"] = abs(float(full) - float(kept)) <= 1e-2 * max(1.0, abs(float(full)))
    checks["kept_gradients_equal_full"] = worst < (1e-4 if SMOKE else 5e-2)
    checks["only_trained_positions_projected"] = (
        kept_logits.shape[1] == positions.numel() < input_ids.shape[1]
    )
    del model, full_grads, kept_grads, kept_logits
    if DEV == "cuda":
        torch.cuda.empty_cache()
except Exception:
    checks["kept_logits_parity"] = False
    report.failed("kept_logits_parity")
report.save()

# ---------------------------------------------------------------- 2. one epoch per variant, timed
VARIANTS = {"baseline": (False, False), "grouped": (True, False), "grouped+kept": (True, True)}


def epoch(data: Any, method: str, label: str, grouped: bool, kept: bool) -> dict[str, Any]:
    original = label_logits.accepts_logits_to_keep
    if not kept:  # the trainer then calls the model without logits_to_keep (full logits, sliced)
        label_logits.accepts_logits_to_keep = lambda model: False  # type: ignore[assignment]
    try:
        if DEV == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        config = SFTConfig(
            base_model=str(base), method=method, epochs=1, batch_size=8,
            learning_rate=2e-4 if method == "lora" else 2e-5, logging_steps=1, save_steps=100_000,
            max_length=2048, precision=PRECISION, device=DEV, group_by_length=grouped, warmup=0.0, seed=0,
        )  # fmt: skip
        summary = train_sft(data, WORK / "run", config, progress=False).summary
        if DEV == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    finally:
        label_logits.accepts_logits_to_keep = original
        shutil.rmtree(WORK / "run", ignore_errors=True)  # a full model is a gigabyte; only timings are kept
    training = summary["training"]
    return {
        "grouped_batches": grouped,
        "logits_at_trained_positions": kept,
        "steps": training["steps"],
        "train_seconds": training["seconds_this_run"],
        "wall_seconds": round(seconds, 1),
        "tokens": training["tokens_this_run"],
        "tokens_per_second": training["tokens_per_second"],
        "train_loss": round(training["train_loss"], 4),
        **report.peak_memory(),
    }


try:
    demo = load("demo")
    data = build_gen_data(demo, per_task=16 if SMOKE else 96, test_per_task=0, noun="film", progress=False)
    n = 16 if SMOKE else 256
    data.train = random.Random(0).sample(data.train, min(n, len(data.train)))
    result["examples"] = len(data.train)
    tasks: dict[str, int] = {}
    for example in data.train:
        tasks[example.task] = tasks.get(example.task, 0) + 1
    result["tasks"] = dict(sorted(tasks.items()))
    # an untimed epoch first: the first training on a fresh GPU pays its warm-up (measured: 2.3x slower)
    warm = data.__class__(**{**vars(data), "train": data.train[: 2 if SMOKE else 32]})
    epoch(warm, "lora", "warmup", True, True)
    timings: dict[str, dict[str, Any]] = {}
    result["epochs"] = timings
    result["repeats"] = REPEATS
    for method in ("lora", "full"):
        timings[method] = {}
        for repeat in range(REPEATS):  # every other repeat in reverse order, so no variant always runs first
            order = list(VARIANTS) if repeat % 2 == 0 else list(reversed(VARIANTS))
            for label in order:
                row = epoch(data, method, label, *VARIANTS[label])
                print(method, label, repeat, row, flush=True)
                entry = timings[method].setdefault(label, {**row, "train_seconds_each": []})
                entry["train_seconds_each"].append(row["train_seconds"])
                entry["train_seconds"] = round(statistics.median(entry["train_seconds_each"]), 2)
                entry["tokens_per_second"] = round(row["tokens"] / entry["train_seconds"], 1)
                report.save()
        for entry in timings[method].values():
            entry["speedup"] = round(timings[method]["baseline"]["train_seconds"] / entry["train_seconds"], 2)
        report.save()
    for method, rows in timings.items():
        checks[f"{method}_same_tokens_every_variant"] = len({r["tokens"] for r in rows.values()}) == 1
        checks[f"{method}_losses_finite"] = all(r["train_loss"] == r["train_loss"] for r in rows.values())
except Exception:
    checks["epochs"] = False
    report.failed("epochs")
report.save()
print({k: v for k, v in result.items() if k != "shape"}, flush=True)
sys.exit(0 if checks and all(checks.values()) else 1)
