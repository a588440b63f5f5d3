"""An image source -> the metrics pipeline, sharded over torch.distributed ranks like EDM's fid.py; and the whole
runs of `fid.py calc` / `calculate_metrics.py calc` (`image_statistics`: reference, images, detectors, all checked
before extraction, then one pass) and `ref` (`reference_statistics`: the same, saved as reference statistics).

Batching is NVlabs' (docs/distributed.md): the selected indices are split into ((N-1)//(B*W) + 1) * W near-equal
batches and rank r takes batches r, r+W, ...; with the same batch size and world size every batch holds the images
EDM's batch holds. Each rank accumulates its own sums (no per-batch barrier); a failure on any rank is reported to
all ranks before the single all-reduce, so nobody waits forever. Every detector sees each batch once it is loaded:
one data loader for all metrics.

Progress lines use NVlabs EDM2's words ("Loading images from ...", "Setting up InceptionV3Detector...",
"Calculating feature statistics..."), through `log` (rank 0; standard error unless the caller says otherwise).
"""

import dataclasses
import os
import sys

import torch
import tqdm

from edm_bdia import distributed
from edm_bdia.distributed import rank_batches
from edm_bdia.errors import ArgumentError
from edm_bdia.fid import refs
from edm_bdia.fid.datasets import check_image_sizes, collate_images, open_images, select_indices
from edm_bdia.fid.metrics import parse_metrics
from edm_bdia.fid.pipeline import check_reference_dims, open_pipeline, references_on_rank_zero
from edm_bdia.files import check_writable_file


def default_workers():
    """DataLoader workers: 3 (EDM's choice) where the CPUs allow, fewer on small machines (no oversubscription)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return max(0, min(3, cpus - 1))


def log_to_stderr(message):
    distributed.print0(message, file=sys.stderr, flush=True)  # stdout carries only the result


@dataclasses.dataclass
class ImageStatistics:
    """What `image_statistics` measured: {metric: (mu, sigma)} (float64 numpy), the image count, {metric: the
    detector's identity}, the reference statistics {metric: (mu, sigma)} (rank 0, when asked for) and the device
    the detectors ran on."""
    statistics: dict
    num_images: int
    detectors: dict
    references: dict | None
    device: torch.device


def image_statistics(images, *, metrics=('fid',), num=None, seed=0, batch_size=64, workers=None, device='cpu',
                     reference=None, progress=False, log=log_to_stderr, **detector_options):
    """Statistics of `metrics` (default: FID's alone) for the images of a folder, .zip or .npz (EDM's `num`-subset
    rule with `seed`), summed over all ranks (collective: joins the launcher's process group, `device` as
    `distributed.init` takes it); detector_options as edm_bdia.fid.metrics.open_detectors takes them.

    Everything is checked before the (long) extraction, in NVlabs' order: `reference` (a registry name, path or
    URL) read by rank 0 with every metric present; the images listed, counted and their sizes read from the file
    headers; the detectors loaded and the reference's feature sizes checked against them."""
    device = distributed.init(device)
    metrics = parse_metrics(metrics)
    references = references_on_rank_zero(reference, metrics, log) if reference is not None else None
    with distributed.all_ranks():
        log(f'Loading images from {images} ...')
        dataset = open_images(images)
        indices = select_indices(len(dataset), num, seed)
        if len(indices) < 2:
            raise ArgumentError('images', f'{images}: statistics need at least 2 images, found {len(indices)}')
        check_image_sizes(dataset, indices)
    pipeline, infos = open_pipeline(metrics, device, log=log, **detector_options)
    check_reference_dims(references, pipeline, reference)
    log('Calculating feature statistics...')
    extract_statistics(dataset, pipeline, indices, batch_size=batch_size,
                       workers=default_workers() if workers is None else workers, progress=progress)
    return ImageStatistics(pipeline.statistics(), len(indices), infos, references, device)


def reference_statistics(images, dest, *, metrics=('fid',), file_format=None, device='cpu', **options):
    """Collective: the statistics of `images` (options as for `image_statistics`) saved by rank 0 to `dest` as
    EDM's .npz (fid only; '.npz' is appended when missing) or EDM2's .pkl; `file_format` 'npz' or 'pkl', by
    default told by `dest`'s extension. Both are checked before any work. Returns (the path written on rank 0,
    else None; the ImageStatistics)."""
    device = distributed.init(device)
    metrics = parse_metrics(metrics)
    file_format = file_format or refs.statistics_file_format(dest)
    path = refs.npz_path(dest) if file_format == 'npz' else os.fspath(dest)
    with distributed.all_ranks():
        refs.check_statistics_destination(dest, metrics, file_format)
        check_writable_file(path, 'dest')
    stats = image_statistics(images, metrics=metrics, device=device, **options)
    saved = None
    if distributed.get_rank() == 0:
        saved = refs.save_statistics(path, stats.statistics, stats.num_images, file_format)
    return saved, stats


def extract_statistics(dataset, pipeline, indices, batch_size=64, workers=0, progress=False):
    """Feed `dataset[indices]` to `pipeline` and sum its statistics over all ranks (collective: every rank
    must call it)."""
    rank, world_size = distributed.get_rank(), distributed.get_world_size()

    with distributed.all_ranks():  # a failure on any rank stops all of them before the all-reduce
        batches = [batch for batch in rank_batches([int(i) for i in indices], batch_size, rank, world_size) if batch]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate_images,
            prefetch_factor=2 if workers else None, pin_memory=pipeline.device.type == 'cuda')
        for images in tqdm.tqdm(loader, unit='batch', disable=not progress or rank != 0):
            if isinstance(images, Exception):
                raise images
            pipeline.update(images)
    pipeline.all_reduce()
    return pipeline
