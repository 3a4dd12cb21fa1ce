"""The process-level set-up in core/runtime.py: devices and the CPU allocator."""
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import UsageError
from core.runtime import autocast, autocast_dtype, resolve_device

ROOT = Path(__file__).resolve().parents[1]

# Training steps of a conv net at CIFAR-10 size, in a fresh interpreter (the allocator setting is
# for the whole process); prints each step's minor page faults and resident MB.
STEPS = """
import resource, sys, torch
from core.runtime import keep_freed_memory, resolve_device
if sys.argv[1] == "set":
    resolve_device("cpu")                     # what every train/predict does first
from models.vision import fastnet
torch.manual_seed(0)
m = fastnet(3, 10, 32, width=32)
x = torch.randn(256, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (256,))
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
for i in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    opt.zero_grad()
    torch.nn.functional.cross_entropy(m(x), y).backward()
    opt.step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(faults, int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20)
"""


def _steps(mode: str) -> list[tuple[int, int]]:
    out = subprocess.run([sys.executable, "-c", STEPS, mode], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [tuple(map(int, line.split())) for line in out.splitlines()]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the allocator setting is for glibc on Linux")
@pytest.mark.slow
def test_freed_memory_is_reused_between_training_steps():
    """glibc maps each big activation afresh and unmaps it on free, so every step page-faults
    hundreds of MB of new zeroed pages; once set, later steps reuse the heap: no faults, flat RSS."""
    plain, kept = _steps("plain"), _steps("set")       # steps 0-2 warm up (optimizer state...)
    plain_faults, kept_faults = sum(f for f, _ in plain[3:]), sum(f for f, _ in kept[3:])
    assert plain_faults > 30_000                          # the default: ~100k fresh pages a step
    assert kept_faults * 10 < plain_faults                # kept: the same memory again (~0)
    assert kept[-1][1] - kept[3][1] < 50                  # and no growth from step to step


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_precision_auto_is_bf16_where_the_device_computes_it_natively(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype(cpu, "fp32") is None and autocast_dtype(cuda, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16 and autocast_dtype(cuda, "auto") is torch.bfloat16
    monkeypatch.setattr("core.runtime.cpu_has_bf16", lambda: False)      # an AVX2-only CPU: emulated, slower
    assert autocast_dtype(cpu, "auto") is None
    monkeypatch.setattr("core.runtime.cpu_has_bf16", lambda: True)       # AVX512-BF16 or AMX
    assert autocast_dtype(cpu, "auto") is torch.bfloat16
    with pytest.raises(UsageError, match="unknown precision 'fp16'"):
        autocast_dtype(cpu, "fp16")


def test_autocast_runs_matmuls_in_bf16_only_when_asked():
    lin, x = torch.nn.Linear(4, 3), torch.randn(2, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert lin(x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert lin(x).dtype == torch.float32
