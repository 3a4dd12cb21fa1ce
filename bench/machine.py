"""What machine a benchmark ran on: CPU model, vector extensions, cores, torch threads and the
float32 matmul rate torch reaches on it. Wall-time targets only compare across runs on the
same kind of CPU; print this beside every timing.

    python bench/machine.py
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.runtime import cpu_has_bf16  # noqa: E402


def cpu_info() -> dict:
    model, flags = platform.processor() or "unknown", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    vector = sorted(f for f in flags if f.startswith(("avx512f", "avx512_bf16", "amx", "avx2")))
    return {"cpu": model, "vector": vector, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def sgemm_gflops(m: int = 256, k: int = 1024, n: int = 512, seconds: float = 2.0,
                 dtype: torch.dtype = torch.float32) -> float:
    """(m x k) @ (k x n) in `dtype`, the shape of an Otto MLP layer at batch 256."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(10):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9


if __name__ == "__main__":
    info = cpu_info()
    print(f"cpu: {info['cpu']}  vector: {' '.join(info['vector']) or '-'}  cores: {info['cores']}  "
          f"torch threads: {info['torch_threads']}  torch {torch.__version__}")
    print(f"float32 matmul 256x1024 @ 1024x512: {sgemm_gflops():.0f} GFLOP/s")
    # image tasks autocast to bfloat16 where the CPU has it natively (core/runtime.py)
    print(f"bfloat16 matmul, same shape: {sgemm_gflops(dtype=torch.bfloat16):.0f} GFLOP/s  "
          f"(native bfloat16: {'yes' if cpu_has_bf16() else 'no, emulated'})")
