"""`--device auto|cpu|cuda|cuda:N|mps`: the accelerator every path that runs a model uses.

`auto` takes CUDA, then Apple's MPS, then the CPU. Asking for a device that is not
there is a one-line error, not a silent fall-back: a user who typed `cuda` expects it.
"""

from __future__ import annotations

import re

from .errors import ReviewstarsError

DEVICE_HELP = "Where models run: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."


def resolve_device(name: str | None = "auto") -> str:
    """A torch device string that exists on this machine (torch is imported only to look for an accelerator).
    None is the default, auto; an empty name is refused (`--device "$UNSET"` would pick a GPU unasked)."""
    given = "auto" if name is None else name
    name = given.strip().lower()
    if name in ("cpu", "cpu:0"):
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if name not in ("auto", "mps") and not match:
        raise ReviewstarsError(f"--device {given!r}: use auto, cpu, cuda, cuda:N or mps")
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ReviewstarsError("--device mps: Apple's MPS is not available here (use --device cpu or auto)")
        return "mps"
    if not torch.cuda.is_available():
        raise ReviewstarsError(f"--device {name}: no CUDA GPU is available here (use --device cpu or auto)")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ReviewstarsError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return name


def half_precision_dtype():
    """The 16-bit float a CUDA GPU computes fastest on: bf16 (fp32's range, no overflow)
    from Ampere on, fp16 on older GPUs."""
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
