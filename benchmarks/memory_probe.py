"""Peak resident memory of one job, measured in a fresh process (the benchmark runs this file as a child):

    python benchmarks/memory_probe.py engine SEEDS BATCH   # zero-cost net through the generate engine, PNGs written
    python benchmarks/memory_probe.py network ARCH MODE BATCH  # one denoiser call of a full-size architecture

Prints one JSON line: peak RSS (VmHWM) in bytes, and the RSS before the measured part.
"""

import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import ZeroCostNet, run_engine, sampler_for  # noqa: E402
from bench_timing import peak_rss_bytes, reset_peak_rss  # noqa: E402

from edm_bdia.networks.published import build_published  # noqa: E402
from edm_bdia.speed import accelerate  # noqa: E402


def current_rss_bytes():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmRSS'))


def engine_peak(num_seeds, batch):
    with tempfile.TemporaryDirectory() as outdir:
        run_engine(ZeroCostNet(), sampler_for('edm', 2), range(num_seeds), batch, outdir)
    return dict(peak_rss=peak_rss_bytes(), images=num_seeds)


def network_peak(arch, mode, batch):
    net = accelerate(build_published(arch), mode)
    x = torch.randn(batch, net.img_channels, net.img_resolution, net.img_resolution, dtype=torch.float64)
    labels = torch.eye(net.label_dim)[torch.arange(batch) % net.label_dim] if net.label_dim else None
    before = current_rss_bytes()
    reset_ok = reset_peak_rss()
    with torch.no_grad():
        net(x, torch.tensor(2.5, dtype=torch.float64), labels)
    return dict(peak_rss=peak_rss_bytes(), rss_before=before, reset=reset_ok)


if __name__ == '__main__':
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', torch.get_num_threads())))
    kind, *args = sys.argv[1:]
    result = (engine_peak(int(args[0]), int(args[1])) if kind == 'engine'
              else network_peak(args[0], args[1], int(args[2])))
    print(json.dumps(result))
