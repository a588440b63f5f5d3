"""What every sharded run over a network shares (generation, inversion, editing): joining the process group,
the network opened once (rank 0 first) under one speed plan, and batches processed in lockstep over the ranks."""

import dataclasses
import sys

import torch
import tqdm

from edm_bdia import distributed
from edm_bdia.distributed.batching import batch_bounds, num_batches
from edm_bdia.generation.network import OpenedNetwork, open_network
from edm_bdia.speed import SpeedPlan, apply_plan, make_plan, state_device_for


@dataclasses.dataclass
class Runtime:
    """The device, where the float64 sampler state lives, the opened network and the adapter the samplers call."""
    device: torch.device
    state_device: torch.device
    opened: OpenedNetwork
    net: object  # the speed adapter (edm_bdia.speed.AcceleratedNet) around opened.net


def open_runtime(network, *, device='auto', speed='reference', tile=None, trust_pickle_code=False, check=None):
    """Join the launcher's process group, open `network` (rank 0 first: it downloads into the cache) and wrap it in
    the speed plan (a mode name gets batch-size invariance on CPU/MPS, with `tile` samples per call if given).
    `check(net)` runs on every rank before the adapter is made; any failure stops every rank."""
    device = distributed.attempt(lambda: distributed.init(device))
    plan = distributed.attempt(lambda: speed if isinstance(speed, SpeedPlan) else
                               make_plan(speed, device, tile=tile, batch_invariant=True))
    with distributed.rank_zero_first():
        opened = open_network(network, device=device, trust_pickle_code=trust_pickle_code)
    if check is not None:
        distributed.attempt(lambda: check(opened.net))
    adapter = distributed.attempt(lambda: apply_plan(opened.net, plan, device))
    return Runtime(device=device, state_device=state_device_for(device), opened=opened, net=adapter)


def lockstep_batches(items, max_batch_size, process, *, consume=None, progress=False, unit='img'):
    """Yield `process(batch)` for this rank's batches of `items` (NVlabs' split over ranks), one round of batches
    at a time inside `distributed.attempt`, so that after each round every rank knows of any failure.
    `consume(result)` runs inside the same failure handling. Every rank must iterate to the end."""
    rank, world_size = distributed.get_rank(), distributed.get_world_size()
    count = num_batches(len(items), max_batch_size, world_size)
    with tqdm.tqdm(total=len(items), unit=unit, disable=not progress or rank != 0, file=sys.stderr,
                   dynamic_ncols=True) as bar:
        for first in range(0, count, world_size):
            start, stop = batch_bounds(len(items), count, first + rank)

            def step():
                result = process(items[start:stop]) if stop > start else None
                if result is not None and consume is not None:
                    consume(result)
                return result

            result = distributed.attempt(step)
            bar.update(batch_bounds(len(items), count, first + world_size - 1)[1] -
                       batch_bounds(len(items), count, first)[0])
            if result is not None:
                yield result
