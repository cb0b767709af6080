"""Device check for recai.explain and the tool-learning distillation: CUDA correctness of the three
explainer modes on a tiny random LLM (target frozen, projectors trained, generation with projected
embeddings), then timings of the explainer recipe and the planner-distillation recipe on a randomly
initialised model shaped like Qwen2.5-0.5B. Writes JSON to $OUT/explain_check.json (or ./.gpu/out),
after every step, so a crash still leaves what was measured; a failing step is recorded under
``errors`` and the next one runs.

Run from the repository root: `PYTHONPATH=src:. python benchmarks/explain_cuda/check_train.py`
(`--smoke`: a tiny CPU version of the same steps). Needs torch, transformers and peft, no weights and
no network (every model is built in the process)."""

# ruff: noqa: E402  (a device script: it reads its settings before importing the heavy modules)
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
from benchmarks.device_report import DeviceReport

report = DeviceReport("explain_check.json", work="/tmp/explaincheck")
SMOKE, DEV, WORK, result = report.smoke, report.device, report.work, report.result
save, failed, peak_memory = report.save, report.failed, report.peak_memory
result["transformers"] = transformers.__version__
result["peft"] = peft.__version__


from tests.gen.tiny import tiny_model, tiny_tokenizer
from transformers import TrainerCallback

from recai.agent.learning.distill import distill_planner, student_config
from recai.agent.planner import compact_plan_json
from recai.data import load
from recai.evaluate.runs import RunFolder
from recai.explain import Renderer, build_explain_data, fit_target
from recai.explain.config import ExplainConfig
from recai.explain.evaluation import run_alignment
from recai.explain.model import Explainer
from recai.explain.training import train_explainer
from recai.gen.examples import GenData, GenExample
from recai.train.chat import encode_chat, prompt_ids
from recai.train.sft import SFTConfig

PRECISION = "bf16" if DEV == "cuda" else "fp32"
SFT_DEVICE = None if DEV == "cuda" else "cpu"
MODES = ("behaviour", "intention", "hybrid")
PROJECTORS = ("user_proj", "item_proj")


class Watch(TrainerCallback):
    """Snapshots what must change (projectors, LoRA B) and what must not (embeddings) around training."""

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        named = dict(model.named_parameters())
        self.device = str(next(model.parameters()).device)
        self.dtypes = sorted({str(p.dtype) for p in model.parameters()})
        self.watched = {
            n: p.detach().float().cpu().clone()
            for n, p in named.items()
            if n.startswith(PROJECTORS) or "lora_B" in n
        }
        embed = model.lm.get_input_embeddings().weight
        self.embed = embed.detach().float().cpu().clone()
        by_kind = {"lora": 0, "projector": 0, "other": 0}
        for n, p in named.items():
            if p.requires_grad:
                kind = "lora" if "lora_" in n else "projector" if n.startswith(PROJECTORS) else "other"
                by_kind[kind] += p.numel()
        self.trainable = by_kind

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        named = dict(model.named_parameters())
        diffs = {n: float((named[n].detach().float().cpu() - v).abs().max()) for n, v in self.watched.items()}
        proj = {k: v for k, v in diffs.items() if k.startswith(PROJECTORS)}
        lora_b = [v for k, v in diffs.items() if "lora_B" in k]
        embed = model.lm.get_input_embeddings().weight.detach().float().cpu()
        scales = {n: b for n, b in model.named_buffers() if n.startswith(PROJECTORS) and n.endswith(".scale")}
        self.report = {
            "device": self.device,
            "dtypes": self.dtypes,
            "trainable_by_kind": self.trainable,
            "projector_tensors": len(proj),
            "projectors_changed": (all(v > 0 for v in proj.values()) if proj else None),
            "projector_max_abs_change": max(proj.values(), default=None),
            "lora_b_tensors_changed": f"{sum(v > 0 for v in lora_b)}/{len(lora_b)}",
            "embedding_unchanged": bool(torch.equal(embed, self.embed)),
            # the per-dimension standardisation fitted before training (2026-11-27), on the model's device
            "projector_scales_fitted": (
                all(not bool(torch.all(b == 1)) and str(b.device) == self.device for b in scales.values())
                if scales
                else None
            ),
        }


def probe_logits(model: Any, ids: Any, users: Any, items: Any) -> Any:
    with torch.no_grad():
        return model(
            ids,
            user_vectors=None if users is None else users.to(DEV),
            item_vectors=None if items is None else items.to(DEV),
        ).logits.float()


# ---------------------------------------------------------------- 0. data: demo, a tiny frozen SASRec target
demo = load("demo")
split = demo.split("leave_one_out")
t = time.time()
target = fit_target(
    split,
    "sasrec",
    hidden=32,
    layers=1,
    heads=1,
    inner=64,
    max_len=20,
    epochs=1 if SMOKE else 3,
    patience=3,
    time_budget_s=60,
    seed=0,
)
data_small = build_explain_data(
    demo, target, split=split, per_task=16, test_per_task=4, history_len=5, k=3, n_candidates=3, noun="film"
)
result["target"] = {
    "name": target.name,
    "dim": target.dim,
    "items": target.n_items,
    "frozen": target.frozen,
    "seconds_fit_and_data": round(time.time() - t, 1),
    "small_data": data_small.counts(),
}
save()

# ---------------------------------------------------------------- 1. CUDA correctness, tiny LLM, three modes
tiny_base = WORK / "tiny-base"
tok = tiny_tokenizer()
tiny_model(tok, seed=0).save_pretrained(tiny_base)
tok.save_pretrained(tiny_base)
# two test examples of each scored task: a handful, every kind of prompt
tests: list[Any] = []
for task in ("retrieval", "ranking", "classification", "item_title", "item_similar", "history"):
    tests += [e for e in data_small.test if e.task == task][:2]
modes: dict[str, Any] = {}
result["modes"] = modes
for mode in MODES:
    try:
        t = time.time()
        before = {k: v.clone() for k, v in target.recommender.net_.state_dict().items()}
        watch = Watch()
        folder = WORK / f"tiny-{mode}"
        r = train_explainer(
            data_small,
            folder,
            ExplainConfig(
                mode=mode,
                sft=SFTConfig(
                    base_model=str(tiny_base),
                    max_steps=3 if SMOKE else 12,
                    batch_size=8,
                    learning_rate=5e-3,
                    warmup=0.0,
                    lora_r=4,
                    lora_alpha=8,
                    logging_steps=1,
                    save_steps=1000,
                    max_length=1024,
                    precision=PRECISION,
                    device=SFT_DEVICE,
                ),
                projector_hidden=32,
            ),
            progress=False,
            callbacks=[watch],
        )
        after = target.recommender.net_.state_dict()
        tr = r.summary["training"]
        curve = [p["loss"] for p in tr["loss_curve"]]
        entry: dict[str, Any] = {
            "steps": tr["steps"],
            "precision": tr["precision"],
            "loss_first": curve[0] if curve else None,
            "loss_last": curve[-1] if curve else None,
            "loss_curve": curve,
            "trainable_parameters": tr["trainable_parameters"],
            "parameters": tr["parameters"],
            "encoded": r.summary["data"]["encoded"],
            "dropped": r.summary["data"]["dropped"],
            "target_unchanged": all(torch.equal(before[k], after[k]) for k in before),
            "target_frozen": target.frozen,
            **watch.report,
            "train_seconds": tr["seconds_this_run"],
        }
        modes[mode] = entry
        save()

        # reload on the device and generate with projected embeddings
        explainer = Explainer.load(folder, device=DEV, dtype="bfloat16" if DEV == "cuda" else "float32")
        entry["loaded_device"] = str(next(explainer.model.lm.parameters()).device)
        entry["loaded_lm_dtype"] = str(next(explainer.model.lm.parameters()).dtype)
        renderer = Renderer(explainer.catalog, mode)
        probe = next(e for e in tests if e.task == "ranking")
        rendered = renderer.render(probe, with_answer=False)
        users, items = explainer.vectors([rendered])
        ids = torch.tensor([prompt_ids(explainer.tokenizer, rendered.messages)], device=DEV)

        base_logits = probe_logits(explainer.model, ids, users, items)
        entry["probe"] = {
            "task": probe.task,
            "user_placeholders": 0 if users is None else int(users.shape[0]),
            "item_placeholders": 0 if items is None else int(items.shape[0]),
            "logits_finite": bool(torch.isfinite(base_logits).all()),
        }
        if users is not None or items is not None:
            shifted = probe_logits(
                explainer.model,
                ids,
                None if users is None else users + 1.0,
                None if items is None else items + 1.0,
            )
            # the projected vectors reach the LM: other vectors, other logits after the placeholder
            entry["probe"]["vector_sensitivity"] = float((shifted - base_logits).abs().max())
        # greedy generation from the projected input embeddings (what Explainer.generate does), raw ids
        with torch.no_grad():
            new = explainer.model.lm.generate(
                inputs_embeds=explainer.model.embed(
                    ids,
                    None if users is None else users.to(DEV),
                    None if items is None else items.to(DEV),
                ),
                attention_mask=torch.ones_like(ids),
                max_new_tokens=8,
                min_new_tokens=8,
                do_sample=False,
                pad_token_id=explainer.tokenizer.pad_token_id,
                suppress_tokens=[explainer.model.user_token_id, explainer.model.item_token_id],
            )
        entry["probe"]["generated_ids"] = new[0].tolist()
        entry["probe"]["placeholder_ids"] = [explainer.model.user_token_id, explainer.model.item_token_id]
        t_eval = time.time()
        metrics = run_alignment(explainer, tests, WORK / f"align-{mode}", batch_size=4, progress=False)
        records = RunFolder.load(WORK / f"align-{mode}").records()
        entry["alignment"] = {
            "examples": metrics["n"],
            "tasks": (metrics.get("extra") or {}).get("tasks"),
            "metrics": {k: round(v["mean"], 3) for k, v in metrics["metrics"].items()},
            "seconds": round(time.time() - t_eval, 2),
            "replies_nonempty": sum(bool(r["reply"]) for r in records),
            "sample_reply": next((r["reply"][:160] for r in records if r["reply"]), None),
        }
        entry["seconds"] = round(time.time() - t, 1)
        del explainer
        save()
        print(mode, json.dumps(entry, default=str)[:1500], flush=True)
    except Exception:
        failed(f"mode_{mode}")

# ---------------------------------------------------------------- 2. timing, Qwen2.5-0.5B-shaped random model
from tests.gen.tiny import save_shaped_qwen

qbase = WORK / "qwen-shape"
try:
    t = time.time()
    size = save_shaped_qwen(qbase, smoke=SMOKE)
    result["shape"] = {**size, "seconds_to_build": round(time.time() - t, 1)}
    save()
except Exception:
    failed("build_qwen_shape")
timing: dict[str, Any] = {}
result["timing"] = timing

# 2a. the explainer recipe (benchmarks/explain.py): LoRA r16 + projectors, hybrid, batch 8
try:
    steps = 3 if SMOKE else 36
    t = time.time()
    data_big = build_explain_data(
        demo, target, split=split, per_task=6 if SMOKE else 48, test_per_task=2, noun="film"
    )
    data_s = round(time.time() - t, 1)
    peak_memory()
    t = time.time()
    r = train_explainer(
        data_big,
        WORK / "q-explainer",
        ExplainConfig(
            mode="hybrid",
            sft=SFTConfig(
                base_model=str(qbase),
                max_steps=steps,
                batch_size=8,
                learning_rate=2e-4,
                lora_r=16,
                lora_alpha=32,
                logging_steps=6 if not SMOKE else 1,
                save_steps=1000,
                max_length=1024,
                precision=PRECISION,
                device=SFT_DEVICE,
            ),
        ),
        progress=False,
    )
    tr = r.summary["training"]
    curve = [p["loss"] for p in tr["loss_curve"]]
    timing["explainer_hybrid"] = {
        "steps": tr["steps"],
        "batch_size": 8,
        "seconds": tr["seconds_this_run"],
        "tokens_per_second": tr["tokens_per_second"],
        "tokens_estimate": round((tr["tokens_per_second"] or 0) * tr["seconds_this_run"]),
        "precision": tr["precision"],
        "trainable": tr["trainable_parameters"],
        "parameters": tr["parameters"],
        "dims": r.summary["dims"],
        "loss_first": curve[0] if curve else None,
        "loss_last": curve[-1] if curve else None,
        "examples": r.summary["data"]["encoded"],
        "mean_tokens_per_example": round(r.summary["data"]["tokens"] / r.summary["data"]["encoded"], 1),
        "seconds_build_data": data_s,
        "wall_with_load_and_save": round(time.time() - t, 1),
        **peak_memory(),
    }
    save()
    print("explainer", timing["explainer_hybrid"], flush=True)
except Exception:
    failed("timing_explainer")


# 2b. the tool-learning distillation recipe (recai agent distill): gen SFT with LoRA on planner-length chats
def planner_like(n: int, tok: Any, prompt_tokens: int, answer_tokens: int) -> list[GenExample]:
    """Synthetic (planner prompt -> plan JSON) chats of about ``prompt_tokens`` prompt tokens (catalog
    text as the instructions, tool cards and demonstrations) and ``answer_tokens`` answer tokens
    (a compact plan, its end-of-turn included), measured with ``tok`` and its chat template."""
    catalog = demo.catalog
    texts = [catalog.render(p, by_position=True, max_chars=400) for p in range(len(catalog))]
    system = "You plan tool calls for a film recommender. Tools, schema and examples:\n"
    words = ["heist", "crew", "planning", "a", "robbery", "in", "a", "rainy", "city", "twist"]
    out = []
    for i in range(n):
        request = f"Message: films like item {i} about heists, under 120 minutes\nPlan:"
        query, plan = "", {}
        while True:
            plan = {"intent": "recommend", "steps": [{"tool": "semantic_search", "args": {"query": query}}]}
            answer = compact_plan_json(plan)
            turn = [{"role": "user", "content": request}, {"role": "assistant", "content": answer}]
            if encode_chat(tok, turn).assistant_tokens >= answer_tokens:
                break
            query = f"{query} {words[len(query.split()) % len(words)]}".strip()
        overhead = len(encode_chat(tok, [{"role": "system", "content": system}, *turn]))
        overhead -= encode_chat(tok, turn).assistant_tokens
        body, j = "", i
        while len(tok(body)["input_ids"]) < prompt_tokens:
            body += texts[j % len(texts)] + "\n"
            j += 7
        body = tok.decode(tok(body)["input_ids"][: prompt_tokens - overhead])
        messages = ({"role": "system", "content": system + body}, *turn)
        out.append(GenExample(id=f"plan-{i}", task="recommend:semantic_search", messages=tuple(messages)))
    return out


try:
    steps = 3 if SMOKE else 20
    tok = tiny_tokenizer()
    t = time.time()
    chats = planner_like(4 * steps + 8, tok, 1100, 80)
    lengths = [encode_chat(tok, e.messages) for e in chats[:8]]
    planner_data = GenData(chats[8:], chats[:8], {"kind": "planner", "synthetic": True})
    data_s = round(time.time() - t, 1)
    peak_memory()
    t = time.time()
    config = student_config(
        base_model=str(qbase),
        max_steps=steps,
        logging_steps=5 if not SMOKE else 1,
        save_steps=1000,
        precision=PRECISION,
        device=SFT_DEVICE,
    )
    planner = distill_planner(planner_data, WORK / "distilled", config, merge=True, progress=False)
    wall = round(time.time() - t, 1)
    info = json.loads((WORK / "distilled" / "distill.json").read_text())
    tr = info["training"]
    curve = [p["loss"] for p in tr["loss_curve"]]
    timing["distill_planner"] = {
        "steps": tr["steps"],
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "seconds": tr["seconds_this_run"],
        "tokens": tr["tokens_this_run"],
        "tokens_per_second": tr["tokens_per_second"],
        "precision": tr["precision"],
        "device": tr["device"],
        "trainable": tr["trainable_parameters"],
        "parameters": tr["parameters"],
        "loss_first": curve[0] if curve else None,
        "loss_last": curve[-1] if curve else None,
        "mean_prompt_tokens": round(sum(len(e) - e.assistant_tokens for e in lengths) / len(lengths), 1),
        "mean_answer_tokens": round(sum(e.assistant_tokens for e in lengths) / len(lengths), 1),
        "examples": len(planner_data.train),
        "seconds_build_data": data_s,
        "wall_with_load_save_and_merge": wall,
        "merged_planner_files": sorted(p.name for p in Path(planner).iterdir()),
        **peak_memory(),
    }
    save()
    print("distill", timing["distill_planner"], flush=True)
except Exception:
    failed("timing_distill")


def verdict(mode: str, e: dict[str, Any]) -> dict[str, bool]:
    """The correctness checks of one mode, each True when it held."""
    lora = [int(x) for x in e["lora_b_tensors_changed"].split("/")]
    probe = e.get("probe", {})
    out = {
        "target_unchanged_and_frozen": e["target_unchanged"] and e["target_frozen"],
        "embedding_unchanged": e["embedding_unchanged"],
        "only_lora_and_projectors_trainable": e["trainable_by_kind"]["other"] == 0,
        "every_lora_b_changed": lora[0] == lora[1] > 0,
        "trained_on_device": e["device"].startswith(DEV),
        "bf16_on_cuda": DEV != "cuda" or e["precision"] == "bf16",
        "loss_finite": all(x == x and abs(x) < 1e4 for x in e["loss_curve"]),
        "logits_finite": bool(probe.get("logits_finite")),
        "generated_without_placeholders": bool(probe.get("generated_ids"))
        and not set(probe["placeholder_ids"]) & set(probe["generated_ids"]),
        "alignment_ran": bool(e.get("alignment", {}).get("examples")),
    }
    if mode != "behaviour":
        out["projectors_changed"] = bool(e["projectors_changed"])
        out["projector_scales_fitted"] = bool(e["projector_scales_fitted"])
        out["vectors_reach_the_lm"] = probe.get("vector_sensitivity", 0) > 0
    return out


checks: dict[str, Any] = {}
for mode, entry in modes.items():
    try:
        checks[mode] = verdict(mode, entry)
    except Exception:
        checks[mode] = {"complete": False}
result["checks"] = checks
result["all_checks_passed"] = all(v for c in checks.values() for v in c.values()) and len(checks) == 3
save()
print(json.dumps(result, indent=1, default=str))
sys.exit(0 if result["all_checks_passed"] and not result.get("errors") else 1)
