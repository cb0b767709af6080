"""Which number format runs fast where: bf16 halves memory, but only some hardware computes it natively.

On a GPU with bf16 and on a CPU whose oneDNN has bf16 kernels (the AVX-512 class), bf16 is the fast
choice; on an AVX2-only CPU a bf16 matrix product is emulated and measured 80 times slower than fp32
(a 512 x 896 by 896 x 4864 product, 8.8 s against 0.11 s), so there fp32 is the default.
"""

from __future__ import annotations


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: assume the slow path
        return False


def default_dtype(device: str) -> str:
    """``bfloat16`` where the device computes it natively, else ``float32`` (a torch dtype name)."""
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        return "bfloat16" if cpu_has_fast_bf16() else "float32"
    return "float32"
