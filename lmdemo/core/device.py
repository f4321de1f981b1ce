"""Device and dtype choice: cuda > mps > cpu, bf16 on GPUs that support it.

`LMDEMO_DEVICE` overrides the automatic choice. Imports torch lazily.
"""

from __future__ import annotations

from lmdemo.core.config import settings
from lmdemo.core.errors import UserError


def pick_device(requested: str | None = None) -> str:
    """The device to run on: the request, else LMDEMO_DEVICE, else the best available."""
    import torch

    want = (requested or settings().device or "auto").lower()
    if want == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"Device {want!r} was asked for, but no CUDA GPU is available.")
    if want not in ("cpu", "mps") and not want.startswith("cuda"):
        raise UserError(f"Unknown device {want!r}: use auto, cuda, mps or cpu.")
    return want


def pick_dtype(device: str):
    """bf16 on CUDA GPUs that support it, fp32 elsewhere (CPU, MPS, older GPUs)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")
