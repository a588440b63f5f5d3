"""Sharding over processes, GPUs and nodes: the process group (`process_group`), collectives that report a failure
on every rank instead of hanging (`collectives`: `all_ranks()` and `rank_zero_first()` blocks), and NVlabs' split of
a work list over batches and ranks (`batching`). A single process needs no launcher and creates no process group."""

from edm_bdia.distributed.batching import all_batches, rank_batches
from edm_bdia.distributed.collectives import (RankFailure, all_ranks, all_reduce_sum_, check_all_ranks, error_message,
                                              rank_zero_first)
from edm_bdia.distributed.process_group import (DEVICES, barrier, get_rank, get_world_size, init, launcher_env,
                                                print0, resolve_device, shutdown)

__all__ = ['all_batches', 'rank_batches', 'RankFailure', 'all_ranks', 'all_reduce_sum_', 'check_all_ranks',
           'error_message', 'rank_zero_first', 'DEVICES', 'barrier', 'get_rank', 'get_world_size', 'init',
           'launcher_env', 'print0', 'resolve_device', 'shutdown']
