"""The scope-masked loss: which positions are scoped, the sparse loss against a dense reference, training."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from recai.data import load  # noqa: E402
from recai.gen.items import ItemNames  # noqa: E402
from recai.gen.scope_loss import Scope, ScopeCollator, collate_scopes, scope_masked_loss, scope_of  # noqa: E402
from recai.gen.training import train_sft  # noqa: E402
from recai.train.chat import IGNORE_INDEX  # noqa: E402
from recai.train.label_logits import loss_positions  # noqa: E402
from tests.gen.fixtures import base_folder, config, data  # noqa: E402
from tests.gen.scope_reference import END, START, TRIE, dense_reference  # noqa: E402


def test_scope_covers_trained_span_tokens_with_the_catalog_choices() -> None:
    ids = [1, START, 5, 7, 8, END, 2, START, 9, END]
    labels = [IGNORE_INDEX, *ids[1:]]
    scope = scope_of(ids, labels, TRIE, START, END)
    # logits at the start marker choose a first token, then each prefix's children, then the end
    assert scope.positions == (1, 2, 3, 4, 7, 8)
    assert [sorted(a) for a in scope.allowed] == [[5, 9], [6, 7], [8], [END], [5, 9], [END]]


def test_prompt_spans_and_names_outside_the_catalog_are_not_scoped() -> None:
    ids = [START, 5, 6, END, 3, START, 5, 4, 4, END]
    labels = [IGNORE_INDEX] * 4 + ids[4:]  # the first span is in the prompt (not trained)
    scope = scope_of(ids, labels, TRIE, START, END)
    # the trained span leaves the tree at token 4: only its valid prefix is scoped
    assert scope.positions == (5,) and [sorted(a) for a in scope.allowed] == [[5, 9]]


def test_the_sparse_loss_equals_the_dense_masked_loss_and_its_gradient() -> None:
    rows = [[1, START, 5, 7, 8, END, 2], [3, 3, START, 9, END, 4, 0]]
    labels = torch.tensor(
        [[IGNORE_INDEX, *rows[0][1:]], [IGNORE_INDEX, IGNORE_INDEX, *rows[1][2:6], IGNORE_INDEX]]
    )
    scopes = [scope_of(r, lab.tolist(), TRIE, START, END) for r, lab in zip(rows, labels, strict=True)]
    assert sum(len(s) for s in scopes) == 6
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 100, generator=generator, requires_grad=True)
    sparse = scope_masked_loss(logits, labels, collate_scopes(scopes))
    (sparse_grad,) = torch.autograd.grad(sparse, logits)
    dense = dense_reference(logits, labels, scopes)
    (dense_grad,) = torch.autograd.grad(dense, logits)
    assert torch.allclose(sparse, dense, atol=1e-5)
    assert torch.allclose(sparse_grad, dense_grad, atol=1e-6)
    plain = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 100), labels[:, 1:].reshape(-1))
    assert sparse < plain  # restricting the softmax can only raise the target's probability
    trained = int((labels[:, 1:] != IGNORE_INDEX).sum())
    accumulated = scope_masked_loss(logits, labels, collate_scopes(scopes), num_items_in_batch=3 * trained)
    assert torch.allclose(accumulated, sparse / 3)
    # from logits kept at the trained positions only (the training path), the same loss and gradient
    positions = loss_positions(labels)
    assert positions.tolist() == [0, 1, 2, 3, 4, 5]  # row 0 trains every next token
    kept = logits.detach()[:, positions].requires_grad_()
    narrow = scope_masked_loss(kept, labels, collate_scopes(scopes), positions=positions)
    (narrow_grad,) = torch.autograd.grad(narrow, kept)
    assert torch.allclose(narrow, sparse, atol=1e-6)
    assert torch.allclose(narrow_grad, sparse_grad[:, positions], atol=1e-6)


def test_kept_logits_that_miss_a_scoped_position_are_refused() -> None:
    rows = [[1, START, 5, 7, 8, END, 2]]
    labels = torch.tensor([[IGNORE_INDEX, *rows[0][1:]]])
    scopes = [scope_of(rows[0], labels[0].tolist(), TRIE, START, END)]
    positions = torch.tensor([0, 5])  # scoped positions 1..4 were not kept
    with pytest.raises(ValueError, match="scoped position has no kept logits"):
        scope_masked_loss(torch.randn(1, 2, 100), labels, collate_scopes(scopes), positions=positions)


def test_without_spans_it_is_the_plain_loss() -> None:
    logits = torch.randn(1, 5, 50)
    labels = torch.tensor([[IGNORE_INDEX, 4, 2, IGNORE_INDEX, 7]])
    loss = scope_masked_loss(logits, labels, collate_scopes([Scope((), ())]))
    plain = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1))
    assert torch.allclose(loss, plain)


def test_sft_trains_with_the_scope_loss_on_catalog_names(tmp_path: Path) -> None:
    base = base_folder(tmp_path)
    names = ItemNames(load("demo").catalog).names
    with pytest.raises(ValueError, match="catalog_names"):
        train_sft(data(), tmp_path / "none", config(base, max_steps=1, scope_loss=True), progress=False)
    scoped = train_sft(
        data(),
        tmp_path / "scoped",
        config(base, max_steps=4, scope_loss=True, group_by_length=False),  # batches as before: a curve
        catalog_names=names,
        progress=False,
    )
    plain = train_sft(
        data(), tmp_path / "plain", config(base, max_steps=4, group_by_length=False), progress=False
    )
    info = scoped.summary["data"]["scope_loss"]
    assert info["catalog_items"] == len(names) and info["scoped_tokens"] > 0
    assert plain.summary["data"]["scope_loss"] is None
    first = [r.summary["training"]["loss_curve"][0]["loss"] for r in (scoped, plain)]
    # the same model and first batch: the scoped loss is the smaller one
    assert first[0] < first[1], first
    curve = [p["loss"] for p in scoped.summary["training"]["loss_curve"]]
    assert curve[-1] < curve[0], curve


def test_the_collator_carries_the_scope_of_each_row() -> None:
    collator = ScopeCollator(pad_id=0)
    rows = [
        {
            "input_ids": [1, START, 9, END],
            "labels": [IGNORE_INDEX, START, 9, END],
            "scope": Scope((1, 2), ((5, 9), (END,))),
        },
        {"input_ids": [2], "labels": [2], "scope": Scope((), ())},
    ]
    batch = collator(rows)
    assert batch["scope_row"].tolist() == [0, 0] and batch["scope_position"].tolist() == [1, 2]
    assert batch["pair_scope"].tolist() == [0, 0, 1] and batch["pair_token"].tolist() == [5, 9, END]
