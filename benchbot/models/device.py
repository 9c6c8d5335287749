"""The torch device a user named (`auto`, `cpu`, `cuda`, `cuda:N`), checked before any model moves."""
from __future__ import annotations

import torch

from benchbot.core.errors import BenchbotError


def pick_device(name: object = "auto") -> torch.device:
    """`auto` → CUDA when available, else CPU. Anything else must name a CPU or an existing GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)  # type: ignore[call-overload]  # any value: torch rejects what it cannot parse
    except (RuntimeError, TypeError, ValueError):
        raise BenchbotError(f"unknown device {str(name)[:40]!r}", "use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise BenchbotError(f"device {dev} is not supported", "use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchbotError(f"device {dev} requested but CUDA is not available", "use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BenchbotError(f"device {dev}: this machine has {torch.cuda.device_count()} GPU(s)",
                            "use cuda:0 … cuda:N-1, or auto")
    return dev
