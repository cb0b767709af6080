"""Default number formats: bf16 only where the device computes it natively."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import recai.llm.devices as devices  # noqa: E402


def test_cpu_default_follows_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.default_dtype("cpu") == "float32"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.default_dtype("cpu") == "bfloat16"


def test_gpu_default_follows_the_card(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.default_dtype("cuda") == devices.default_dtype("cuda:1") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a V100, say
    assert devices.default_dtype("cuda") == "float32"
    assert devices.default_dtype("mps") == "float32"
