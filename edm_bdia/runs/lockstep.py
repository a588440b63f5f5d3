"""A work list split over the ranks in lockstep: NVlabs' batches (edm_bdia.distributed.batching), one round of
batches (one per rank) per iteration, so that every rank iterates the same number of times."""

import itertools
import sys

import tqdm

from edm_bdia import distributed
from edm_bdia.distributed.batching import batch_bounds, num_batches


class LockstepBatches:
    """Iterating yields this rank's batch of `items` (a list, possibly empty) for each round. Every rank gets the
    same number of rounds, so a job can process each batch inside `distributed.all_ranks()`, which then tells every
    rank of a failure on any rank after each round. `progress`: a bar on rank 0 (stderr) counting all ranks' items;
    `advance(fraction)` moves it within a round (a sampler's step callback, `progress_callback`), so long batches
    show their steps."""

    def __init__(self, items, max_batch_size, *, progress=False, unit='img'):
        self.items, self.max_batch_size = items, max_batch_size
        self.progress, self.unit = progress, unit
        self._bar = None
        self._round = (0, 0)  # (items done before this round, items in this round) over all ranks

    def __iter__(self):
        rank, world_size = distributed.get_rank(), distributed.get_world_size()
        count = num_batches(len(self.items), self.max_batch_size, world_size)
        with tqdm.tqdm(total=len(self.items), unit=self.unit, disable=not self.progress or rank != 0,
                       file=sys.stderr, dynamic_ncols=True) as self._bar:
            for first in range(0, count, world_size):
                done = batch_bounds(len(self.items), count, first)[0]
                self._round = (done, batch_bounds(len(self.items), count, first + world_size - 1)[1] - done)
                start, stop = batch_bounds(len(self.items), count, first + rank)
                yield list(self.items[start:stop])
                self.advance(1)

    def advance(self, fraction):
        """Show `fraction` (0 to 1) of the current round as done."""
        done, size = self._round
        if self._bar is not None and not self._bar.disable:
            self._bar.n = done + round(size * fraction, 2)
            self._bar.refresh()


def progress_callback(advance, calls):
    """A sampler `callback` for a batch whose samplers call back `calls` times in all (once per step): each call
    tells `advance` (LockstepBatches.advance) the share of the calls made so far, reaching 1 with the last."""
    made = itertools.count(1)
    return lambda step: advance(next(made) / calls)
