"""A work list split over the ranks in lockstep: NVlabs' batches (edm_bdia.distributed.batching), one round of
batches (one per rank) per iteration, so that every rank iterates the same number of times."""

import sys

import tqdm

from edm_bdia import distributed
from edm_bdia.distributed.batching import batch_bounds, num_batches


def lockstep_batches(items, max_batch_size, *, progress=False, unit='img'):
    """Yield this rank's batch of `items` (a list, possibly empty) for each round. Every rank gets the same number of
    rounds, so a job can process each batch inside `distributed.all_ranks()`, which then tells every rank of a
    failure on any rank after each round. `progress`: a bar on rank 0 (stderr) counting all ranks' items."""
    rank, world_size = distributed.get_rank(), distributed.get_world_size()
    count = num_batches(len(items), max_batch_size, world_size)
    with tqdm.tqdm(total=len(items), unit=unit, disable=not progress or rank != 0, file=sys.stderr,
                   dynamic_ncols=True) as bar:
        for first in range(0, count, world_size):
            start, stop = batch_bounds(len(items), count, first + rank)
            yield list(items[start:stop])
            bar.update(batch_bounds(len(items), count, first + world_size - 1)[1] -
                       batch_bounds(len(items), count, first)[0])
