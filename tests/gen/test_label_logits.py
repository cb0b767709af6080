"""Logits at trained positions only: the same loss and gradients as the model's own loss, in a Trainer
too, and length-grouped batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from recai.train.chat import IGNORE_INDEX  # noqa: E402
from recai.train.collate import PadCollator  # noqa: E402
from recai.train.label_logits import (  # noqa: E402
    accepts_logits_to_keep,
    causal_loss_at,
    label_logits_trainer,
    loss_positions,
)
from recai.train.sft import SFTConfig, sampling_arguments, sampling_strategy  # noqa: E402
from tests.gen.tiny import tiny_model, tiny_tokenizer  # noqa: E402


def batch(vocab: int) -> dict[str, Any]:
    """Three right-padded rows whose answers sit at different positions (one row trains two spans)."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 6:] = 0
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[0, 8:12] = ids[0, 8:12]
    labels[1, 6:9] = ids[1, 6:9]
    labels[2, 2:3] = ids[2, 2:3]
    labels[2, 4:6] = ids[2, 4:6]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_positions_are_those_whose_next_token_any_row_trains() -> None:
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, 4:6] = 7
    labels[1, 2] = 5
    assert loss_positions(labels).tolist() == [1, 3, 4]
    assert loss_positions(torch.full((2, 6), IGNORE_INDEX)).numel() == 0


def test_the_loss_from_kept_logits_equals_the_models_own_loss_and_gradient() -> None:
    model = tiny_model(tiny_tokenizer())
    inputs = batch(model.config.vocab_size)
    own = model(**inputs).loss
    own_grad = torch.autograd.grad(own, model.lm_head.weight)[0]

    positions = loss_positions(inputs["labels"])
    assert positions.numel() < inputs["labels"].shape[1] - 1  # some positions are skipped
    plain = {k: v for k, v in inputs.items() if k != "labels"}
    kept = model(**plain, logits_to_keep=positions).logits
    assert kept.shape[1] == positions.numel()
    loss = causal_loss_at(kept, inputs["labels"], positions)
    grad = torch.autograd.grad(loss, model.lm_head.weight)[0]
    assert torch.allclose(loss, own, atol=1e-6)
    assert torch.allclose(grad, own_grad, atol=1e-6)

    trained = int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
    accumulated = causal_loss_at(kept, inputs["labels"], positions, num_items_in_batch=2 * trained)
    assert torch.allclose(accumulated, own / 2, atol=1e-6)
    # a model that returned every position: sliced to the same loss
    full = model(**plain).logits
    assert torch.allclose(causal_loss_at(full, inputs["labels"], positions), own, atol=1e-6)


def test_which_models_take_logits_to_keep() -> None:
    from peft import LoraConfig, get_peft_model

    model = tiny_model(tiny_tokenizer())
    assert accepts_logits_to_keep(model)
    wrapped = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules="all-linear"))
    assert accepts_logits_to_keep(wrapped)  # looked up under the PEFT wrapper, whose forward takes **kwargs
    assert not accepts_logits_to_keep(torch.nn.Linear(2, 2))


def _train(tmp_path: Path, name: str, trainer_class: Any) -> tuple[list[float], Any]:
    from transformers import TrainingArguments

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=3)
    inputs = batch(model.config.vocab_size)
    rows = [
        {"input_ids": ids[: int(m.sum())].tolist(), "labels": lab[: int(m.sum())].tolist()}
        for ids, m, lab in zip(inputs["input_ids"], inputs["attention_mask"], inputs["labels"], strict=True)
    ] * 4
    args = TrainingArguments(
        output_dir=str(tmp_path / name),
        max_steps=3,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        data_seed=0,
        remove_unused_columns=False,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=rows, data_collator=PadCollator(0))
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return losses, model.lm_head.weight.detach().clone()


def test_a_trainer_on_kept_logits_takes_the_same_steps_as_the_plain_one(tmp_path: Path) -> None:
    from transformers import Trainer

    plain_losses, plain_weights = _train(tmp_path, "plain", Trainer)
    kept_losses, kept_weights = _train(tmp_path, "kept", label_logits_trainer(Trainer))
    assert len(kept_losses) == 3
    assert kept_losses == pytest.approx(plain_losses, rel=1e-4)
    assert torch.allclose(kept_weights, plain_weights, atol=1e-5)


def test_batches_are_grouped_by_length_unless_asked_otherwise(tmp_path: Path) -> None:
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_pt_utils import LengthGroupedSampler

    assert SFTConfig().group_by_length and sampling_strategy(SFTConfig()) == "group_by_length"
    assert sampling_strategy(SFTConfig(group_by_length=False)) == "random"
    rows = [{"input_ids": [1] * n, "labels": [1] * n} for n in (3, 40, 5, 38, 4, 41, 6, 39) * 8]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to="none",
        remove_unused_columns=False,
        **sampling_arguments(SFTConfig()),
    )
    trainer = Trainer(model=tiny_model(tiny_tokenizer()), args=args, train_dataset=rows)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    order = list(sampler)
    assert sorted(order) == list(range(64))
    short = [len(rows[i]["input_ids"]) < 10 for i in order]
    mixed = sum(short[k] != short[k + 1] for k in range(0, 64, 2))
    # shuffled, then sorted within 4 megabatches of 16: a short row meets a long one at most once in each
    assert mixed <= 4
