"""Peak resident memory of one job, measured in a fresh process (the throughput benchmark runs this as a child):

    python -m benchmarks.memory_probe engine SEEDS BATCH   # zero-cost net through the generate engine, PNGs written
    python -m benchmarks.memory_probe network ARCH MODE BATCH  # one denoiser call of a full-size architecture

Prints one JSON line: peak RSS (VmHWM) in bytes, and the RSS before the measured part.
"""

import argparse
import json
import os
import tempfile

import torch

from edm_bdia.networks.published import build_published
from edm_bdia.speed import accelerate

from .common.engine import ZeroCostNet, run_engine, sampler_for


def _status_bytes(field):
    """A memory field of /proc/self/status ('VmRSS', 'VmHWM', ...) in bytes."""
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))


def current_rss_bytes():
    return _status_bytes('VmRSS')


def peak_rss_bytes():
    """The process's peak resident set (VmHWM)."""
    return _status_bytes('VmHWM')


def reset_peak_rss():
    """Restart VmHWM at the current RSS (Linux: `5` to /proc/self/clear_refs); False where not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    jobs = parser.add_subparsers(dest='kind', required=True)
    engine = jobs.add_parser('engine', help='zero-cost net through the generate engine, PNGs written')
    engine.add_argument('seeds', type=int)
    engine.add_argument('batch', type=int)
    network = jobs.add_parser('network', help='one denoiser call of a full-size architecture')
    network.add_argument('arch')
    network.add_argument('mode')
    network.add_argument('batch', type=int)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', torch.get_num_threads())))
    result = (engine_peak(args.seeds, args.batch) if args.kind == 'engine'
              else network_peak(args.arch, args.mode, args.batch))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
