"""Seed and device are resolved here, once per run, and passed down explicitly; the CPU
allocator is set up with the device."""
from __future__ import annotations

import ctypes
import functools
import platform
import random

import numpy as np
import torch

from core.config import PRECISIONS
from core.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4          # glibc's mallopt parameters (malloc.h)
_allocator_set = False


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse instead of handing it back to the OS.

    By default glibc serves every block over 32 MB (over 128 KB at first) with its own mmap and
    unmaps it on free, so each training step of a conv net gets its activations and gradients
    as fresh pages and pays a page fault to zero every 4 KB of them (~100k faults a step for
    fastnet width 32 at batch 256); every predict batch too. From the heap, the next step reuses
    the same memory. On 2 cores that step went from 0.72 to 0.57 s, and a one-epoch
    `train cifar10` from 246 to 171 s with the same bytes out, predict batches of 1024 included
    (BENCHMARKS.md). The cost: the process keeps its peak heap until it exits (for that step,
    1.14 GB resident against ~1.0 GB). Tables are unaffected either way: their blocks are small.
    Linux with glibc only; elsewhere a no-op.
    """
    global _allocator_set
    if _allocator_set or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt(_M_MMAP_MAX, 0)                   # no block gets its own mapping: all come from the heap
    mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)     # and the heap's free top is kept (up to the C int's max)
    _allocator_set = True


def resolve_device(name: str) -> torch.device:
    """The torch device for `name`, once per run; the process's allocator is set up here too."""
    keep_freed_memory()
    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), where oneDNN runs
    bfloat16 convs and matmuls ~2x faster than float32; elsewhere it emulates them, slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")   # private, hence the guard
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The dtype to autocast the forward pass to, or None for float32. 'auto': bfloat16 on CUDA
    and on a CPU that computes it natively (`cpu_has_bf16`), float32 elsewhere."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type == "cpu" and not cpu_has_bf16()):
        return None
    return torch.bfloat16


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """A context that runs the forward pass in `autocast_dtype(device, precision)`: convs and
    matmuls in bfloat16, other ops as torch's autocast lists say; weights, gradients and optimizer
    state stay float32, and callers take the logits back to float32 for the loss."""
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch Generator for data shuffling on the CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def as_tensor(x, device, dtype=torch.float32) -> torch.Tensor:
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:     # IDX bytes read with np.frombuffer: torch would share a read-only buffer
        x = x.copy()
    return torch.as_tensor(x, dtype=dtype, device=device)
