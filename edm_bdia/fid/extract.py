"""Images -> detector features -> float64 statistics, sharded over torch.distributed ranks like EDM's fid.py.

Batching follows edm-format.md §4.4: the selected indices are split into ((N-1)//(B*W) + 1) * W near-equal batches
and rank r takes batches r, r+W, ...; with the same --batch and world size every batch holds the images EDM's batch
holds. Each rank accumulates its own sums (no per-batch barrier); a failure on any rank is reported to all ranks
before the single all-reduce, so nobody waits forever.
"""

import torch
import tqdm

from edm_bdia.distributed import rank_batches
from edm_bdia.fid.datasets import collate_images
from edm_bdia.fid.stats import FeatureStats
from edm_bdia import distributed


def feature_dim(detector, device='cpu'):
    """Feature size of ``detector``: its ``feature_dim`` attribute, else measured on one blank 16x16 image."""
    dim = getattr(detector, 'feature_dim', None)
    if dim is None:
        with torch.no_grad():
            dim = detector(torch.zeros(1, 3, 16, 16, dtype=torch.uint8, device=device), return_features=True).shape[1]
    return int(dim)


def compute_statistics(dataset, detector, indices, batch_size=64, workers=3, device='cpu', progress=False):
    """FeatureStats over ``dataset[indices]``, summed over all ranks (collective: every rank must call it)."""
    device = torch.device(device)
    rank, world_size = distributed.get_rank(), distributed.get_world_size()

    def accumulate():
        stats = FeatureStats(feature_dim(detector, device), device=device)
        batches = [batch for batch in rank_batches([int(i) for i in indices], batch_size, rank, world_size) if batch]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=workers,
            collate_fn=collate_images, prefetch_factor=2 if workers else None, pin_memory=device.type == 'cuda')
        for images in tqdm.tqdm(loader, unit='batch', disable=not progress or rank != 0):
            if isinstance(images, Exception):
                raise images
            with torch.no_grad():
                stats.update(detector(images.to(device), return_features=True))
        return stats

    stats = distributed.attempt(accumulate)  # a failure on any rank stops all of them before the all-reduce
    stats.all_reduce()
    return stats
