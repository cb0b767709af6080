"""Which number format runs fast where: bf16 halves memory, but only some hardware computes it natively.

On a GPU with bf16 and on an x86 CPU with bf16 instructions (AVX512-BF16 or AMX-BF16), bf16 is the
fast choice. Elsewhere a bf16 matrix product is emulated: on an AVX2-only CPU it measured 80 times
slower than fp32 (a 512 x 896 by 896 x 4864 product, 8.8 s against 0.11 s), and AVX-512 CPUs without
the BF16 extension emulate it too, so there fp32 is the default.
"""

from __future__ import annotations

from typing import Any


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has bf16 instructions: AVX512-BF16 or AMX-BF16 on x86 (read from torch's CPU
    capability table); elsewhere (ARM) whether oneDNN has bf16 kernels for it."""
    import torch

    capability = _cpu_capability(torch)
    if capability.get("architecture") in ("x86_64", "x86", "AMD64") or "avx2" in capability:
        return bool(capability.get("avx512_bf16") or capability.get("amx_bf16"))
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: assume the slow path
        return False


def _cpu_capability(torch: Any) -> dict[str, Any]:
    """torch's table of CPU features (a private API: empty when this torch has none)."""
    try:
        return dict(torch._C._cpu._get_cpu_capability())
    except (AttributeError, RuntimeError, TypeError):
        return {}


def default_dtype(device: str) -> str:
    """``bfloat16`` where the device computes it natively, else ``float32`` (a torch dtype name)."""
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        return "bfloat16" if cpu_has_fast_bf16() else "float32"
    return "float32"
