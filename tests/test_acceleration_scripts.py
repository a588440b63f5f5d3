"""The GPU check scripts on a machine without CUDA: a clear refusal, and the --dry-run path end to end."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the refusal on a machine without CUDA')
def test_gpu_check_refuses_without_cuda_with_one_line():
    result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh')], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == ('gpu_check.sh: CUDA is not available here; run on a CUDA machine or pass '
                                     '--dry-run')


def test_gpu_check_rejects_unknown_arguments():
    result = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_check.sh'), '--fast'], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown argument '--fast'" in result.stderr


@pytest.mark.slow
def test_gpu_check_dry_run_prints_parity_and_throughput_tables(tmp_path):
    out = tmp_path / 'gpu.md'
    result = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_check.py'), '--dry-run', '--out',
                             str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text == result.stdout
    # CPU against CPU: the parity rows must be exact passes; CUDA-only variants are reported as skipped
    assert '| cifar10-ddpmpp-cond | 0.0e+00 | 0.000% | 0 | pass |' in text
    assert '| imagenet-adm-cond | 0.0e+00 | 0.000% | 0 | pass |' in text
    assert text.count('skipped (CUDA only)') == 6
    for variant in ('NVlabs as-is', 'fp32', 'fast fp32 (NHWC)', 'bf16'):
        assert f'| cifar10-ddpmpp-cond | {variant} | 4 |' in text
