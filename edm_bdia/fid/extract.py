"""An image source -> the FID pipeline, sharded over torch.distributed ranks like EDM's fid.py; and the whole runs of
`fid.py calc` (`image_statistics`: detector, checks before extraction, extraction) and `fid.py ref`
(`reference_statistics`: the same, saved as reference statistics).

Batching is NVlabs' (docs/distributed.md): the selected indices are split into ((N-1)//(B*W) + 1) * W near-equal
batches and rank r takes batches r, r+W, ...; with the same batch size and world size every batch holds the images
EDM's batch holds. Each rank accumulates its own sums (no per-batch barrier); a failure on any rank is reported to
all ranks before the single all-reduce, so nobody waits forever.
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
from edm_bdia.fid.pipeline import open_pipeline
from edm_bdia.files import check_writable_file


def default_workers():
    """DataLoader workers: 3 (EDM's choice) where the CPUs allow, fewer on small machines (no oversubscription)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return max(0, min(3, cpus - 1))


def _log(message):
    distributed.print0(message, file=sys.stderr, flush=True)  # stdout carries only the result


@dataclasses.dataclass
class ImageStatistics:
    """What `image_statistics` measured: mu and sigma (float64 numpy), the image count, the detector's identity,
    the reference statistics (rank 0, when asked for) and the device the detector ran on."""
    mu: object
    sigma: object
    num_images: int
    detector: dict
    reference: tuple | None
    device: torch.device


def image_statistics(images, *, num=None, seed=0, batch_size=64, detector=None, trust_pickle_code=False,
                     workers=None, device='cpu', reference=None, progress=False):
    """Inception statistics of the images of a folder, .zip or .npz (EDM's `num`-subset rule with `seed`), summed
    over all ranks (collective: joins the launcher's process group, `device` as `distributed.init` takes it). With
    `reference` (a registry name, path or URL), rank 0 loads it and checks it against the detector's feature size
    before any image is read; the image sizes are read from the headers first too, so a bad input fails before the
    (long) extraction."""
    device = distributed.init(device)
    pipeline, info = open_pipeline(detector, device, trust_pickle_code)

    with distributed.all_ranks():
        stats = None
        if reference is not None and distributed.get_rank() == 0:  # rank 0 only, like EDM
            _log(f'Loading reference statistics from "{reference}"...')
            stats = refs.load_checked_reference(reference, pipeline.feature_dim)
        dataset = open_images(images)
        indices = select_indices(len(dataset), num, seed)
        if len(indices) < 2:
            raise ArgumentError('images', f'{images}: FID needs at least 2 images, found {len(indices)}')
        check_image_sizes(dataset, indices)
    _log(f'Computing Inception statistics of {len(indices)} images from "{images}" '
         f'on {distributed.get_world_size()} rank(s)...')
    extract_statistics(dataset, pipeline, indices, batch_size=batch_size,
                       workers=default_workers() if workers is None else workers, progress=progress)
    mu, sigma = pipeline.statistics()
    return ImageStatistics(mu, sigma, len(indices), info, stats, device)


def reference_statistics(images, dest, *, device='cpu', **options):
    """Collective: the statistics of `images` (options as for `image_statistics`) saved by rank 0 as reference
    statistics to `dest` (checked first: '.npz' is appended when missing); (the path written on rank 0, else None;
    the ImageStatistics)."""
    device = distributed.init(device)
    with distributed.all_ranks():
        check_writable_file(refs.npz_path(dest), 'dest')
    stats = image_statistics(images, device=device, **options)
    saved = refs.save_reference(dest, stats.mu, stats.sigma) if distributed.get_rank() == 0 else None
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
