"""Device check for recai.gen.rl (GRPO through TRL): CUDA correctness on a tiny model (SFT LoRA, then
GRPO steps in bf16, the policy moves, the output is a plain loadable model that generates on the GPU),
then timings of the GRPO recipe on a randomly initialised model shaped like Qwen2.5-0.5B. Writes JSON to
$OUT/rl_check.json (or ./.gpu/out) after every part, so a crash still leaves what was measured; a
failing part is recorded under ``errors`` (with its traceback) and the next one runs. Exit code 0 only
when every check passed.

Run from the repository root: `PYTHONPATH=src:. python benchmarks/gen_cuda/check_rl.py` (`--smoke`: a
tiny CPU version of the same steps). Needs torch, transformers, peft, trl and datasets, no weights and
no network (every model is built in the process)."""

# ruff: noqa: E402  (a device script: it reads its settings before importing the heavy modules)
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from benchmarks.device_report import DeviceReport

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
report = DeviceReport("rl_check.json", work="/tmp/rlcheck")
SMOKE, DEV, WORK, result = report.smoke, report.device, report.work, report.result
save, failed, peak_memory = report.save, report.failed, report.peak_memory


def finite(values: list[Any]) -> bool:
    return bool(values) and all(isinstance(v, int | float) and math.isfinite(v) for v in values)


checks: dict[str, bool] = {}
result["checks"] = checks
try:
    import datasets
    import peft
    import transformers
    import trl

    result["versions"] = {
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
        "datasets": datasets.__version__,
    }
    if DEV == "cuda":
        result["bf16_supported"] = torch.cuda.is_bf16_supported()
    from trl import GRPOTrainer  # noqa: F401  (the trainer train_grpo uses imports)

    checks["trl_and_datasets_import"] = True
except Exception:
    checks["trl_and_datasets_import"] = False
    failed("imports")
save()

from tests.gen.tiny import tiny_model, tiny_tokenizer
from transformers import TrainerCallback

from recai.data import load
from recai.gen.generate import GenRecommender
from recai.gen.models import load_gen_model
from recai.gen.rl import rl_examples, train_grpo
from recai.gen.rl_config import RLConfig
from recai.gen.tasks import build_gen_data
from recai.gen.training import train_sft
from recai.train.chat import prompt_ids
from recai.train.sft import SFTConfig

SFT_DEVICE = None if DEV == "cuda" else "cpu"
RL_DEVICE = None if DEV == "cuda" else "cpu"
# a reward function's per-term means and TRL's own metrics kept per logged step
CURVE_KEYS = (
    "loss",
    "reward",
    "reward_std",
    "frac_reward_zero_std",
    "kl",
    "entropy",
    "completions/mean_length",
    "completions/clipped_ratio",
    "step_time",
    "learning_rate",
    "grad_norm",
)


class Watch(TrainerCallback):
    """What GRPO trains (the new LoRA adapter on the folded SFT model) and how long each step takes."""

    def __init__(self) -> None:
        self.step_seconds: list[float] = []
        self._t = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        named = dict(model.named_parameters())
        self.device = str(next(model.parameters()).device)
        self.dtypes = sorted({str(p.dtype) for p in model.parameters()})
        self.trainable_dtypes = sorted({str(p.dtype) for p in model.parameters() if p.requires_grad})
        self.watched = {n: p.detach().float().cpu().clone() for n, p in named.items() if "lora_B" in n}
        self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.trainable_not_lora = [n for n, p in named.items() if p.requires_grad and "lora_" not in n]
        self.parameters = sum(p.numel() for p in model.parameters())

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if DEV == "cuda":
            torch.cuda.synchronize()
        self._t = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if DEV == "cuda":
            torch.cuda.synchronize()
        self.step_seconds.append(time.perf_counter() - self._t)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        named = dict(model.named_parameters())
        diffs = [float((named[n].detach().float().cpu() - v).abs().max()) for n, v in self.watched.items()]
        self.report = {
            "device": self.device,
            "dtypes": self.dtypes,
            "trainable_dtypes": self.trainable_dtypes,
            "trainable": self.trainable,
            "parameters": self.parameters,
            "trainable_not_lora": self.trainable_not_lora[:8],
            "lora_b_tensors_changed": f"{sum(d > 0 for d in diffs)}/{len(diffs)}",
            "lora_b_max_abs_change": max(diffs, default=None),
        }


class Curve(TrainerCallback):
    """The trainer's logged metrics per step (TRL's loss, reward, KL, completion lengths, step time)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "reward" in logs:
            row = {"step": state.global_step}
            for k, v in logs.items():
                if k in CURVE_KEYS or k.startswith("reward_terms/"):
                    row[k] = float(f"{v:.6g}") if isinstance(v, int | float) else v  # KL is ~1e-6
            self.rows.append(row)


def grpo(data: Any, catalog: Any, output: Path, config: RLConfig) -> dict[str, Any]:
    watch, curve = Watch(), Curve()
    t = time.time()
    r = train_grpo(data, catalog, output, config, progress=False, callbacks=[watch, curve])
    wall = round(time.time() - t, 1)
    tr = r.summary["training"]
    rows = curve.rows
    batch = config.batch_size
    generated = [round(row.get("completions/mean_length", 0.0) * batch) for row in rows]
    per_step = watch.step_seconds
    steady = per_step[1:] if len(per_step) > 1 else per_step
    return {
        "steps": r.steps,
        "prompts_available": r.prompts,
        "batch_size": batch,
        "num_generations": config.num_generations,
        "max_completion_length": config.max_completion_length,
        "precision": tr["precision"],
        "device": tr["device"],
        "train_loss": tr["train_loss"],
        "seconds": round(r.seconds, 2),
        "wall_with_load_merge_and_save": wall,
        "step_seconds": [round(s, 3) for s in per_step],
        "seconds_per_step_mean": round(sum(per_step) / len(per_step), 3) if per_step else None,
        "seconds_per_step_after_first": round(sum(steady) / len(steady), 3) if steady else None,
        "generated_tokens": sum(generated),
        "generated_tokens_per_step": generated,
        "generated_tokens_per_second": round(sum(generated) / sum(per_step), 1) if per_step else None,
        "reward_curve": [row.get("reward") for row in rows],
        "kl_curve": [row.get("kl") for row in rows],
        "loss_curve": [row.get("loss") for row in rows],
        "frac_reward_zero_std": [row.get("frac_reward_zero_std") for row in rows],
        "log": rows,
        "watch": watch.report,
    }


def generic_checks(prefix: str, e: dict[str, Any], config: RLConfig) -> None:
    checks[f"{prefix}_all_steps_ran"] = e["steps"] == config.max_steps
    checks[f"{prefix}_on_device"] = e["device"].startswith(DEV) and e["watch"]["device"].startswith(DEV)
    checks[f"{prefix}_bf16_on_cuda"] = DEV != "cuda" or e["precision"] == "bf16"
    checks[f"{prefix}_only_lora_trainable"] = not e["watch"]["trainable_not_lora"]
    checks[f"{prefix}_loss_reward_kl_finite"] = (
        finite(e["loss_curve"])
        and finite(e["reward_curve"])
        and finite(e["kl_curve"])
        and math.isfinite(e["train_loss"])
    )
    checks[f"{prefix}_generated_tokens"] = e["generated_tokens"] > 0


demo = load("demo")
catalog = demo.catalog

# ---------------------------------------------------------------- 1. CUDA correctness, tiny model
try:
    t = time.time()
    small = build_gen_data(
        demo,
        ["category_cold", "count", "item_category"],
        per_task=16,
        test_per_task=4,
        k=3,
        min_k=2,
        history_len=3,
        noun="film",
        progress=False,
    )
    tiny_base = WORK / "tiny-base"
    tok = tiny_tokenizer()
    tiny_model(tok, seed=0).save_pretrained(tiny_base)
    tok.save_pretrained(tiny_base)
    sft = train_sft(
        small,
        WORK / "tiny-sft",
        SFTConfig(
            base_model=str(tiny_base),
            max_steps=2 if SMOKE else 10,
            batch_size=8,
            learning_rate=5e-3,
            warmup=0.0,
            lora_r=8,
            lora_alpha=16,
            logging_steps=1 if SMOKE else 5,
            save_steps=1000,
            max_length=1024,
            device=SFT_DEVICE,
        ),
        progress=False,
    )
    curve = [p["loss"] for p in sft.summary["training"]["loss_curve"]]
    result["tiny_sft"] = {
        "steps": sft.summary["training"]["steps"],
        "precision": sft.summary["training"]["precision"],
        "loss_first": curve[0] if curve else None,
        "loss_last": curve[-1] if curve else None,
        "seconds": round(time.time() - t, 1),
        "adapter": (WORK / "tiny-sft" / "adapter_config.json").exists(),
    }
    save()
    rl = RLConfig(
        sft_model=str(WORK / "tiny-sft"),
        max_steps=3 if SMOKE else 8,
        batch_size=8,
        num_generations=4,
        max_completion_length=32 if SMOKE else 48,
        learning_rate=2e-3,
        logging_steps=1,
        save_steps=1000,
        lora_r=8,
        lora_alpha=16,
        device=RL_DEVICE,
    )
    # A random model's names are never catalog titles, so every reply of a group scores the same and
    # GRPO's group advantages (and so its updates) are zero. A catalog that grounds any name to its
    # nearest title (threshold 1 instead of the default) gives the replies different rewards.
    loose = load("demo").catalog
    loose.grounding_threshold = 1.0
    entry = grpo(small, loose, WORK / "tiny-rl", rl)
    entry["grounding_threshold"] = loose.grounding_threshold
    result["tiny_grpo"] = entry
    save()
    generic_checks("tiny_grpo", entry, rl)
    checks["tiny_grpo_prompts_are_list_tasks"] = entry["prompts_available"] == len(rl_examples(small))
    lora = [int(x) for x in entry["watch"]["lora_b_tensors_changed"].split("/")]
    checks["tiny_grpo_some_group_rewards_differ"] = any(
        f is not None and f < 1.0 for f in entry["frac_reward_zero_std"]
    )
    checks["tiny_grpo_lora_b_changed"] = lora[0] > 0
    # after the first step with a non-zero advantage the policy has moved, so the KL to the SFT model
    # (the adapter disabled) is positive on later steps
    moved = [i for i, f in enumerate(entry["frac_reward_zero_std"]) if f is not None and f < 1.0]
    if moved and moved[0] + 1 < len(entry["kl_curve"]):
        checks["tiny_grpo_kl_positive_after_update"] = max(entry["kl_curve"][moved[0] + 1 :]) > 0

    # the output: one plain model folder, SFT and RL folded in, that differs from the SFT model
    out = WORK / "tiny-rl"
    info = json.loads((out / "recai_gen.json").read_text())
    files = sorted(p.name for p in out.iterdir())
    sft_model, _ = load_gen_model(WORK / "tiny-sft", merge=True)
    rl_model, _ = load_gen_model(out)
    a, b = sft_model.state_dict(), rl_model.state_dict()
    diffs = {n: float((a[n].float() - b[n].float()).abs().max()) for n in a if n in b}
    linear = {n: d for n, d in diffs.items() if n.endswith("proj.weight")}
    other = {n: d for n, d in diffs.items() if not n.endswith("proj.weight")}
    entry["output"] = {
        "files": files,
        "method": info.get("method"),
        "reward_curve_points": len(info.get("training", {}).get("reward_curve", [])),
        "work_folder_removed": not (WORK / "tiny-rl.work").exists(),
        "same_parameter_names": sorted(a) == sorted(b),
        "linear_weights_changed": f"{sum(d > 0 for d in linear.values())}/{len(linear)}",
        "linear_max_abs_change": max(linear.values(), default=None),
        "other_max_abs_change": max(other.values(), default=None),
    }
    del sft_model, rl_model
    checks["tiny_output_is_plain_model"] = (
        "adapter_config.json" not in files and "model.safetensors" in files and info.get("method") == "grpo"
    )
    checks["tiny_output_work_folder_removed"] = entry["output"]["work_folder_removed"]
    checks["tiny_output_policy_changed"] = sum(d > 0 for d in linear.values()) > 0
    checks["tiny_output_non_lora_weights_unchanged"] = (entry["output"]["other_max_abs_change"] or 0.0) == 0.0
    save()

    # load it on the device and generate (constrained greedy, free sampling)
    gen = GenRecommender.load(out, catalog, dtype="bfloat16" if DEV == "cuda" else "float32", device=DEV)
    tests = [e for e in small.test if e.k is not None][:2]
    prompts = [e.prompt for e in tests]
    exclude = [catalog.index_of(list(e.seen), missing="drop").tolist() for e in tests]
    replies: dict[str, Any] = {"loaded_device": str(next(gen.model.parameters()).device)}
    replies["loaded_dtype"] = str(next(gen.model.parameters()).dtype)
    for label, kw in {
        "constrained_greedy": {"constrained": True, "exclude": exclude},
        "free_sample": {"constrained": False, "do_sample": True, "temperature": 1.0, "seed": 0},
    }.items():
        outs = gen.generate(prompts, max_new_tokens=48, batch_size=2, **kw)
        rows = []
        for e, o, ex in zip(tests, outs, exclude, strict=True):
            comp = o.parsed.positions[:-1] if o.parsed.partial else o.parsed.positions
            bad = sum(p is None for p in comp) + (len(comp) - len(set(comp))) + len(set(comp) & set(ex))
            rows.append(
                {
                    "task": e.task,
                    "new_tokens": len(o.token_ids),
                    "finished": o.finished,
                    "names": o.parsed.names[:5],
                    "violations": bad,
                    "text": o.text[:200],
                }
            )
        replies[label] = rows
    entry["replies"] = replies
    checks["tiny_generates_on_device"] = replies["loaded_device"].startswith(DEV) and all(
        r["new_tokens"] > 0 for k in ("constrained_greedy", "free_sample") for r in replies[k]
    )
    constrained = replies["constrained_greedy"]
    checks["tiny_constrained_no_violations"] = all(r["violations"] == 0 for r in constrained)
    entry["seconds_part"] = round(time.time() - t, 1)
    del gen
    save()
    print("tiny", json.dumps({k: v for k, v in entry.items() if k != "log"}, default=str)[:3000], flush=True)
except Exception:
    checks["tiny_part_complete"] = False
    failed("tiny_grpo")

# ---------------------------------------------------------------- 2. timing, Qwen2.5-0.5B-shaped random model
from tests.gen.tiny import save_shaped_qwen

timing: dict[str, Any] = {}
result["timing"] = timing
qsft = WORK / "q-sft"
try:
    t = time.time()
    tok = tiny_tokenizer()
    qbase = WORK / "qwen-shape"
    size = save_shaped_qwen(qbase, smoke=SMOKE)
    result["shape"] = {**size, "seconds_to_build": round(time.time() - t, 1)}
    big = build_gen_data(
        demo,
        ["sequential", "count", "category_cold"],
        per_task=16 if SMOKE else 32,
        test_per_task=2,
        noun="film",
        progress=False,
    )
    prompt_tokens = [len(prompt_ids(tok, e.prompt)) for e in rl_examples(big)[:32]]
    # the SFT model GRPO starts from: two LoRA steps (the RL path folds this adapter in first)
    t = time.time()
    train_sft(
        big,
        qsft,
        SFTConfig(
            base_model=str(qbase),
            max_steps=2,
            batch_size=8,
            learning_rate=2e-4,
            logging_steps=1,
            save_steps=1000,
            max_length=2048,
            device=SFT_DEVICE,
        ),
        progress=False,
    )
    result["shape"]["sft_seconds"] = round(time.time() - t, 1)
    result["shape"]["mean_prompt_tokens"] = round(sum(prompt_tokens) / len(prompt_tokens), 1)
    peak_memory()
    save()
except Exception:
    checks["qwen_shape_built"] = False
    failed("build_qwen_shape")

# 2a. the recipe: group 4 (RLConfig's default), batch 8 completions, 64 new tokens, 10 steps
# 2b. RLConfig's default completion length (256), fewer steps
runs = (
    ("grpo_64_tokens", 2 if SMOKE else 10, 16 if SMOKE else 64),
    ("grpo_256_tokens_default", 1 if SMOKE else 4, 32 if SMOKE else 256),
)
for label, steps, new_tokens in runs:
    if not qsft.exists():
        break
    try:
        rl = RLConfig(
            sft_model=str(qsft),
            max_steps=steps,
            batch_size=8,
            num_generations=4,
            max_completion_length=new_tokens,
            logging_steps=1,
            save_steps=1000,
            device=RL_DEVICE,
        )
        entry = grpo(big, catalog, WORK / f"q-{label}", rl)
        entry.update(peak_memory())
        entry["note"] = (
            "random weights never end a reply, so every completion runs to max_completion_length; "
            "generation is TRL's transformers generate (no vLLM)"
        )
        timing[label] = entry
        generic_checks(f"qwen_{label}", entry, rl)
        checks[f"qwen_{label}_output_is_plain_model"] = (WORK / f"q-{label}" / "model.safetensors").exists()
        shutil.rmtree(WORK / f"q-{label}", ignore_errors=True)
        save()
        brief = {k: v for k, v in entry.items() if k != "log"}
        print(label, json.dumps(brief, default=str)[:2000], flush=True)
    except Exception:
        checks[f"qwen_{label}_complete"] = False
        failed(f"timing_{label}")

result["all_checks_passed"] = bool(checks) and all(checks.values()) and not result.get("errors")
save()
print(json.dumps({k: v for k, v in result.items() if k not in ("timing",)}, indent=1, default=str)[:6000])
sys.exit(0 if result["all_checks_passed"] else 1)
