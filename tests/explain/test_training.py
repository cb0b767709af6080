"""Explainer training on a tiny random LLM: what is trained and saved, placeholders, masks, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from safetensors import safe_open  # noqa: E402

from recai.explain import Renderer  # noqa: E402
from recai.explain.config import ExplainConfig  # noqa: E402
from recai.explain.model import (  # noqa: E402
    PROJECTORS_FILE,
    Explainer,
    ExplainerModel,
    add_placeholder_tokens,
    make_projector,
)
from recai.explain.training import encode, train_explainer  # noqa: E402
from recai.train.sft import SFTConfig  # noqa: E402
from tests.explain.helpers import base_folder, small_data  # noqa: E402
from tests.gen.tiny import tiny_model, tiny_tokenizer  # noqa: E402


class CrashError(RuntimeError):
    pass


def config(base: Path, mode: str = "hybrid", **kwargs: object) -> ExplainConfig:
    values = {
        "base_model": str(base),
        "max_steps": 3,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "save_steps": 1,
        "logging_steps": 1,
        "max_length": 768,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "warmup": 0.0,
        "device": "cpu",
    }
    values.update(kwargs)
    return ExplainConfig(mode=mode, sft=SFTConfig(**values), projector_hidden=16)  # type: ignore[arg-type]


def test_loss_covers_only_the_answer_and_placeholders_match_vectors() -> None:
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer)
    ids = add_placeholder_tokens(tokenizer, model)
    data = small_data()
    renderer = Renderer(data.catalog, "intention")
    example = next(e for e in data.train if e.task == "ranking")
    rows, dropped = encode([example], renderer, tokenizer, max_length=2048, ids=ids)
    (row,) = rows
    trained = [t for t in row["labels"] if t != -100]
    assert tokenizer.decode(trained) == example.answer + "<|im_end|>\n"
    assert row["input_ids"].count(ids[0]) == 1 and row["input_ids"].count(ids[1]) == 3
    behaviour = [e for e in data.train if e.task == "history"]
    _, dropped = encode(behaviour, Renderer(data.catalog, "behaviour"), tokenizer, max_length=2048, ids=ids)
    assert dropped["not_in_mode"] == len(behaviour)
    # new rows are the mean row (a reload rebuilds them exactly), not random ones
    rows_ = model.get_input_embeddings().weight
    assert torch.allclose(rows_[ids[0]], rows_[: ids[0]].mean(0)) and torch.equal(
        rows_[ids[0]], rows_[ids[1]]
    )

    explainer = ExplainerModel(model, user_token_id=ids[0], item_token_id=ids[1], user_dim=16, item_dim=16)
    input_ids = torch.tensor([row["input_ids"]])
    with pytest.raises(ValueError, match="1 user placeholder"):
        explainer.embed(input_ids, torch.zeros(2, 16), torch.zeros(3, 16))
    a = explainer(input_ids, user_vectors=torch.zeros(1, 16), item_vectors=torch.zeros(3, 16)).logits
    b = explainer(input_ids, user_vectors=torch.ones(1, 16), item_vectors=torch.zeros(3, 16)).logits
    first = row["input_ids"].index(ids[0])
    assert torch.allclose(a[0, :first], b[0, :first]) and not torch.allclose(a[0, first:], b[0, first:])


def test_hybrid_trains_lora_and_projectors_only_and_leaves_the_target_alone(tmp_path: Path) -> None:
    data = small_data()
    before = {k: v.clone() for k, v in data.target.recommender.net_.state_dict().items()}
    result = train_explainer(data, tmp_path / "m", config(base_folder(tmp_path)), progress=False)
    assert result.steps == 3 and result.summary["mode"] == "hybrid"
    after = data.target.recommender.net_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and data.target.frozen

    folder = tmp_path / "m"
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        adapter = list(f.keys())
    assert adapter and all("lora_" in k for k in adapter)  # no embedding matrix, no head
    with safe_open(str(folder / PROJECTORS_FILE), "pt") as f:
        assert {k.split(".")[0] for k in f.keys()} == {"user_proj", "item_proj"}  # noqa: SIM118

    explainer = Explainer.load(folder)
    # what was trainable is exactly the LoRA and projector weights: no embedding row, no head row
    lora_and_projectors = sum(
        p.numel()
        for n, p in explainer.model.named_parameters()
        if "lora_" in n or n.startswith(("user_proj", "item_proj"))
    )
    assert result.summary["training"]["trainable_parameters"] == lora_and_projectors
    assert not any("lora_" in n and ("embed_tokens" in n or "lm_head" in n) for n in adapter)
    rendered = [Renderer(explainer.catalog, "hybrid").render(e, with_answer=False) for e in data.test[:3]]
    again = Explainer.load(folder)
    users, _ = explainer.vectors(rendered)
    ids = torch.tensor([[1, 2, explainer.model.user_token_id, 3]])
    with torch.no_grad():
        one = explainer.model(ids, user_vectors=users[:1]).logits
        two = again.model(ids, user_vectors=users[:1]).logits
    assert torch.allclose(one, two)  # placeholder rows and projectors rebuild identically
    replies = explainer.generate(rendered, max_new_tokens=4)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    # the projectors' input scaling was fitted on the target's vectors and saved with them
    table = torch.from_numpy(data.target.item_vectors())
    assert torch.allclose(explainer.model.item_proj.shift, table.mean(0), atol=1e-6)
    assert torch.allclose(explainer.model.item_proj.scale, table.std(0), atol=1e-6)
    assert not torch.equal(explainer.model.user_proj.scale, torch.ones_like(explainer.model.user_proj.scale))


def test_projectors_standardise_small_recommender_vectors() -> None:
    torch.manual_seed(0)
    vectors = 0.05 * torch.randn(300, 64)  # SASRec-sized rows: norm about 0.4
    raw, scaled = make_projector(64, 128, 96), make_projector(64, 128, 96)
    scaled.load_state_dict(raw.state_dict())  # the same weights: only the scaling differs
    scaled.fit_scale(vectors.numpy())

    def mean_cosine(out: torch.Tensor) -> float:
        unit = torch.nn.functional.normalize(out, dim=1)
        sims = unit @ unit.T
        return float((sims.sum() - sims.diag().sum()) / (len(sims) ** 2 - len(sims)))

    with torch.no_grad():
        assert mean_cosine(raw(vectors)) > 0.9  # unscaled, the biases swamp the inputs: one embedding
        assert mean_cosine(scaled(vectors)) < 0.5  # scaled, items stay apart
    with pytest.raises(ValueError, match="at least 2 vectors of size 64"):
        scaled.fit_scale(vectors[:1].numpy())
    with pytest.raises(ValueError, match="size 64"):
        scaled.fit_scale(torch.zeros(5, 8).numpy())


def test_projector_files_without_the_scaling_load_and_broken_ones_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    data = small_data()
    folder = tmp_path / "m"
    train_explainer(data, folder, config(base_folder(tmp_path), "intention", max_steps=1), progress=False)
    state = load_file(str(folder / PROJECTORS_FILE))
    assert {"item_proj.shift", "item_proj.scale", "user_proj.shift", "user_proj.scale"} <= set(state)
    old = {k: v for k, v in state.items() if not k.endswith((".shift", ".scale"))}
    save_file(old, str(folder / PROJECTORS_FILE))  # as written before the scaling existed
    loaded = Explainer.load(folder)
    assert torch.equal(loaded.model.item_proj.shift, torch.zeros(data.target.item_vectors().shape[1]))
    broken = {k: v for k, v in old.items() if k != "item_proj.0.weight"}
    save_file(broken, str(folder / PROJECTORS_FILE))
    with pytest.raises(ValueError, match=r"item_proj weights do not match \(missing \['0.weight'\]"):
        Explainer.load(folder)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class CrashAt(TrainerCallback):
        def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
            if state.global_step == 2:  # type: ignore[attr-defined]
                raise CrashError

    base = base_folder(tmp_path)
    cfg = config(base, "intention")
    with pytest.raises(CrashError):
        train_explainer(small_data(), tmp_path / "a", cfg, progress=False, callbacks=[CrashAt()])
    checkpoint = tmp_path / "a.work" / "checkpoint-1"
    assert checkpoint.exists() and not (tmp_path / "a").exists()
    assert sorted(p.name for p in checkpoint.glob("*.safetensors")) == ["explainer_trainable.safetensors"]
    with pytest.raises(ValueError, match="mode"):
        train_explainer(small_data(), tmp_path / "a", config(base, "hybrid"), progress=False)
    resumed = train_explainer(small_data(), tmp_path / "a", cfg, progress=False)
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-1")
    straight = train_explainer(small_data(), tmp_path / "b", cfg, progress=False)
    a, b = Explainer.load(tmp_path / "a"), Explainer.load(tmp_path / "b")
    sa = {n: p for n, p in a.model.named_parameters() if "lora_" in n or n.startswith("user_proj")}
    sb = {n: p for n, p in b.model.named_parameters() if "lora_" in n or n.startswith("user_proj")}
    assert sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)
    assert straight.steps == resumed.steps == 3
