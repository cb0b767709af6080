"""Device check for the scope-masked loss (recai.gen.scope_loss): on CUDA, the sparse loss and its gradient
equal a dense masked reference; then LoRA SFT with and without it on a randomly initialised model shaped
like Qwen2.5-0.5B (bf16), timed, so the cost of scoping is known. Writes JSON to
$OUT/scope_loss_check.json (or ./.gpu/out) after every part; a failing part is recorded under ``errors``.

Run from the repository root: `PYTHONPATH=src:. python benchmarks/gen_cuda/check_scope_loss.py`
(`--smoke`: a tiny CPU version of the same steps). Needs torch, transformers and peft; no weights, no
network."""

# ruff: noqa: E402  (a device script: it reads its settings before importing the heavy modules)
from __future__ import annotations

import sys
import time

import torch
from benchmarks.device_report import DeviceReport

report = DeviceReport("scope_loss_check.json", work="/tmp/scopecheck")
SMOKE, DEV, WORK, result = report.smoke, report.device, report.work, report.result
checks: dict[str, bool] = {}
result["checks"] = checks

from tests.gen.scope_reference import TRIE, dense_reference
from tests.gen.tiny import save_shaped_qwen

from recai.data import load
from recai.gen.items import ItemNames
from recai.gen.scope_loss import collate_scopes, scope_masked_loss, scope_of
from recai.gen.tasks import build_gen_data
from recai.gen.training import train_sft
from recai.train.chat import IGNORE_INDEX
from recai.train.sft import SFTConfig

# ---------------------------------------------------------------- 1. the loss itself on the device
try:
    start, end = 90, 91
    rows = [[1, start, 5, 7, 8, end, 2], [3, 3, start, 9, end, 4, 0]]
    labels = torch.tensor(
        [[IGNORE_INDEX, *rows[0][1:]], [IGNORE_INDEX, IGNORE_INDEX, *rows[1][2:6], IGNORE_INDEX]]
    )
    scopes = [scope_of(r, lab.tolist(), TRIE, start, end) for r, lab in zip(rows, labels, strict=True)]
    logits = torch.randn(2, 7, 100, generator=torch.Generator().manual_seed(0)).to(DEV).requires_grad_()
    sparse = scope_masked_loss(logits, labels.to(DEV), collate_scopes(scopes))
    (sparse_grad,) = torch.autograd.grad(sparse, logits)
    cpu_logits = logits.detach().cpu().requires_grad_()
    dense = dense_reference(cpu_logits, labels, scopes)
    (dense_grad,) = torch.autograd.grad(dense, cpu_logits)
    checks["loss_matches_dense_reference"] = bool(torch.allclose(sparse.cpu(), dense, atol=1e-5))
    checks["gradient_matches_dense_reference"] = bool(
        torch.allclose(sparse_grad.cpu(), dense_grad, atol=1e-6)
    )
except Exception:
    checks["loss_matches_dense_reference"] = False
    report.failed("loss")
report.save()

# ---------------------------------------------------------------- 2. SFT with and without it, timed
try:
    base = WORK / "base"
    result["shape"] = save_shaped_qwen(base, smoke=SMOKE)
    demo = load("demo")
    data = build_gen_data(
        demo, ["sequential", "count", "category"], per_task=8 if SMOKE else 64, test_per_task=0, k=5,
        history_len=5, noun="film", progress=False,
    )  # fmt: skip
    names = ItemNames(demo.catalog).names
    steps = 2 if SMOKE else 30
    runs = {}
    # a short untimed run first: the first training on a fresh GPU pays its warm-up (measured: 2.3x slower)
    for label, scoped in (("warmup", False), ("plain", False), ("scope_loss", True)):
        if DEV == "cuda":
            torch.cuda.synchronize()
        started = time.time()
        config = SFTConfig(
            base_model=str(base), max_steps=3 if label == "warmup" else steps, batch_size=8,
            learning_rate=2e-4, logging_steps=1,
            save_steps=1000, max_length=2048, precision="fp32" if SMOKE else "bf16", device=DEV,
            scope_loss=scoped, warmup=0.0,
        )  # fmt: skip
        trained = train_sft(
            data, WORK / label, config, progress=False, catalog_names=names if scoped else None
        ).summary
        curve = [p["loss"] for p in trained["training"]["loss_curve"]]
        runs[label] = {
            "steps": trained["training"]["steps"],
            "seconds": round(time.time() - started, 1),
            "tokens_per_second": trained["training"]["tokens_per_second"],
            "first_loss": curve[0],
            "last_loss": curve[-1],
            "scope_loss": trained["data"]["scope_loss"],
            **report.peak_memory(),
        }
        result["sft"] = runs
        report.save()
    checks["scoped_tokens_found"] = bool(runs["scope_loss"]["scope_loss"]["scoped_tokens"] > 0)
    checks["scoped_first_loss_below_plain"] = runs["scope_loss"]["first_loss"] < runs["plain"]["first_loss"]
    checks["scoped_run_learns"] = runs["scope_loss"]["last_loss"] < runs["scope_loss"]["first_loss"]
except Exception:
    checks["sft"] = False
    report.failed("sft")
report.save()
print({k: v for k, v in result.items() if k not in ("shape",)}, flush=True)
sys.exit(0 if checks and all(checks.values()) else 1)
