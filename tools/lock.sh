#!/usr/bin/env bash
# Refresh the locks from the human-edited inputs:
#   requirements.txt      -> requirements.lock      (what `python cli.py ...` needs)
#                         -> requirements-cpu.lock  (the same pins less the CUDA libraries, for
#                                                    CPU-only Linux after a CPU build of torch; README)
#   requirements-dev.txt  -> requirements-dev.lock  (the runtime pins plus tests and benchmarks)
#
#   bash tools/lock.sh                           # after editing an input: keeps every other pin
#   bash tools/lock.sh --upgrade                 # move every package to its newest allowed release
#   bash tools/lock.sh --upgrade-package NAME    # move one
#
# Needs uv (`pip install uv`); it only resolves (reads metadata from PyPI), it installs nothing.
# --universal writes one lock for Linux, macOS and Windows at once, with environment markers
# where they differ; --python-version 3.11 is the lowest Python it resolves for (3.12 included).
# The dev lock is resolved under the runtime lock as constraints, so the tests run on exactly
# the versions users install.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || { echo "tools/lock.sh needs uv: pip install uv" >&2; exit 1; }
common=(--universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command "bash tools/lock.sh")
uv pip compile requirements.txt -o requirements.lock "${common[@]}" "$@"
uv pip compile requirements-dev.txt -c requirements.lock -o requirements-dev.lock "${common[@]}" "$@"
# the Linux CUDA stack that PyPI's torch wheel pulls in; a CPU build of torch needs none of it
no_cuda=()
for name in $(grep -oE '^(nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+|triton)==' requirements.lock | tr -d =); do
    no_cuda+=(--no-emit-package "$name")
done
uv pip compile requirements.txt -c requirements.lock -o requirements-cpu.lock "${common[@]}" "${no_cuda[@]}"
for lock in requirements.lock requirements-cpu.lock requirements-dev.lock; do
    echo "wrote $lock ($(grep -c '^[A-Za-z]' "$lock") pins)"
done
