"""Added tokens' rows get their own, scaled learning rate; everything else keeps the run's."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from recai.train.token_rows import TOKEN_ROWS, split_token_rows  # noqa: E402


class _Rows(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(3))
        self.frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
        self.rows = torch.nn.ParameterDict({"default": torch.nn.Parameter(torch.zeros(2, 3))})


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lora = torch.nn.Linear(3, 3)
        self.embed = _Rows()

    def named_parameters(self, *args: object, **kwargs: object):  # type: ignore[override]
        for name, p in super().named_parameters(*args, **kwargs):  # type: ignore[arg-type]
            yield name.replace("embed.rows", f"embed.{TOKEN_ROWS}"), p


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [params[0]]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": params[1:], "weight_decay": 0.0}], lr=1e-3
    )


def test_rows_move_to_a_group_of_their_own_at_the_scaled_rate() -> None:
    model = _Model()
    optimizer = _optimizer(model)
    assert split_token_rows(optimizer, model, 10.0) == 1
    rows = model.embed.rows["default"]
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    assert by_param[id(rows)]["lr"] == pytest.approx(1e-2)
    assert by_param[id(rows)]["weight_decay"] == 0.0  # the settings of the group it left
    assert by_param[id(model.lora.weight)]["lr"] == pytest.approx(1e-3)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(by_param) == sorted(id(p) for p in trainable)  # each once, none lost
    assert all(g["params"] for g in optimizer.param_groups)  # no empty group left behind


def test_scale_one_or_no_rows_leaves_the_optimizer_alone() -> None:
    model = _Model()
    optimizer = _optimizer(model)
    assert split_token_rows(optimizer, model, 1.0) == 0
    assert len(optimizer.param_groups) == 2
    plain = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-3)
    assert split_token_rows(optimizer, plain, 10.0) == 0
    assert len(optimizer.param_groups) == 1


def test_sft_trains_the_span_rows_at_the_scaled_rate_through_the_schedule(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from transformers import TrainerCallback

    from recai.gen.training import train_sft
    from tests.gen.fixtures import base_folder, config, data

    seen: list[tuple[float, float]] = []

    class Rates(TrainerCallback):
        def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
            optimizer, model = kwargs["optimizer"], kwargs["model"]
            rows = {id(p) for n, p in model.named_parameters() if TOKEN_ROWS in n}
            row_lr = [g["lr"] for g in optimizer.param_groups if id(g["params"][0]) in rows]
            other = [g["lr"] for g in optimizer.param_groups if id(g["params"][0]) not in rows]
            seen.append((row_lr[0], other[0]))

    base = base_folder(tmp_path)
    cfg = config(base, max_steps=3, token_lr_scale=10.0)
    train_sft(data(), tmp_path / "lora", cfg, progress=False, callbacks=[Rates()])
    assert len(seen) == 3
    assert seen[0][1] > seen[1][1] > 0  # the linear schedule decays both groups (to 0 at the end)
    for row_lr, other_lr in seen:
        assert row_lr == pytest.approx(10 * other_lr)


def test_the_scale_must_be_positive() -> None:
    from recai.train.sft import SFTConfig

    with pytest.raises(ValueError, match="token_lr_scale"):
        SFTConfig(token_lr_scale=0)
