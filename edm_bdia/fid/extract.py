"""An image source -> the FID pipeline, sharded over torch.distributed ranks like EDM's fid.py.

Batching is NVlabs' (docs/distributed.md): the selected indices are split into ((N-1)//(B*W) + 1) * W near-equal
batches and rank r takes batches r, r+W, ...; with the same batch size and world size every batch holds the images
EDM's batch holds. Each rank accumulates its own sums (no per-batch barrier); a failure on any rank is reported to
all ranks before the single all-reduce, so nobody waits forever.
"""

import torch
import tqdm

from edm_bdia import distributed
from edm_bdia.distributed import rank_batches
from edm_bdia.fid.datasets import collate_images


def extract_statistics(dataset, pipeline, indices, batch_size=64, workers=0, progress=False):
    """Feed `dataset[indices]` to `pipeline` and sum its statistics over all ranks (collective: every rank
    must call it)."""
    rank, world_size = distributed.get_rank(), distributed.get_world_size()

    def accumulate():
        batches = [batch for batch in rank_batches([int(i) for i in indices], batch_size, rank, world_size) if batch]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate_images,
            prefetch_factor=2 if workers else None, pin_memory=pipeline.device.type == 'cuda')
        for images in tqdm.tqdm(loader, unit='batch', disable=not progress or rank != 0):
            if isinstance(images, Exception):
                raise images
            pipeline.update(images)

    distributed.attempt(accumulate)  # a failure on any rank stops all of them before the all-reduce
    pipeline.all_reduce()
    return pipeline
