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


@pytest.mark.parametrize(
    ("capability", "fast"),
    [
        ({"architecture": "x86_64", "avx2": True, "avx512_f": True, "avx512_bf16": False}, False),
        ({"architecture": "x86_64", "avx2": True, "avx512_f": True, "avx512_bf16": True}, True),
        ({"architecture": "x86_64", "avx2": True, "amx_bf16": True}, True),
        ({"architecture": "x86_64", "avx2": True}, False),
    ],
)
def test_x86_needs_bf16_instructions_not_just_avx512(
    monkeypatch: pytest.MonkeyPatch, capability: dict, fast: bool
) -> None:
    monkeypatch.setattr(devices, "_cpu_capability", lambda torch: capability)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert devices.cpu_has_fast_bf16() is fast


def test_elsewhere_onednn_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cpu_capability", lambda torch: {})
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert devices.cpu_has_fast_bf16() is True
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    assert devices.cpu_has_fast_bf16() is False
