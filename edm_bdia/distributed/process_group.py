"""Joining the process group a launcher describes, and this rank's place in it.

Differences from NVlabs' `torch_utils/distributed.py` (docs/distributed.md):
* a single process creates no process group and binds no port, so concurrent runs never collide;
* rank/world come from torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or, when those are absent, from SLURM
  (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), so `srun python generate.py ...` works without torchrun;
* gloo on CPU (and MPS), nccl on CUDA; `torch.cuda.set_device` only on CUDA.
"""

import datetime
import os

import torch
import torch.distributed as dist

from edm_bdia.errors import ArgumentError

# How long a collective may wait for a slow rank (e.g. rank 0 downloading a 1.2 GB pickle first).
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=1)

_comm_device = torch.device('cpu')  # where collective tensors live: the CUDA device under nccl


def launcher_env():
    """(rank, world_size, local_rank) from torchrun's variables, else SLURM's, else a single process."""
    env = os.environ
    if 'RANK' in env and 'WORLD_SIZE' in env:
        return int(env['RANK']), int(env['WORLD_SIZE']), int(env.get('LOCAL_RANK', 0))
    if 'SLURM_PROCID' in env and 'SLURM_NTASKS' in env:
        rank, world_size = int(env['SLURM_PROCID']), int(env['SLURM_NTASKS'])
        local_rank = int(env.get('SLURM_LOCALID', 0))
        if world_size > 1:
            # env:// rendezvous: the node that launched srun hosts the store; the port follows the job id so
            # two jobs on one node do not collide. Both can be overridden by setting MASTER_ADDR / MASTER_PORT.
            env.setdefault('MASTER_ADDR', env.get('SLURM_LAUNCH_NODE_IPADDR', '127.0.0.1'))
            env.setdefault('MASTER_PORT', str(20000 + int(env.get('SLURM_JOB_ID', 0)) % 20000))
        return rank, world_size, local_rank
    return 0, 1, 0


DEVICES = ('auto', 'cpu', 'cuda', 'mps')


def resolve_device(device='auto', local_rank=0):
    """'auto' -> this rank's CUDA device if there is one, else cpu; 'cuda' -> cuda:LOCAL_RANK; 'cpu'; 'mps'."""
    if isinstance(device, torch.device):
        device = device.type if device.index is None else str(device)
    device = str(device)
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.split(':')[0] not in DEVICES:
        raise ArgumentError('device', f'is {device!r}; use one of {", ".join(DEVICES)}')
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise ArgumentError('device', f'is {device}, but this torch build sees no CUDA device; use cpu')
        return torch.device(device) if ':' in device else torch.device('cuda', local_rank % torch.cuda.device_count())
    if device == 'mps' and not (hasattr(torch.backends, 'mps') and torch.backends.mps.is_available()):
        raise ArgumentError('device', 'is mps, but MPS is not available on this machine; use cpu')
    return torch.device(device)


def init(device='auto'):
    """Join the process group the launcher describes (none for a single process) and return this rank's device."""
    global _comm_device
    rank, world_size, local_rank = launcher_env()
    device = resolve_device(device, local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        dist.init_process_group(backend=backend, init_method='env://', rank=rank, world_size=world_size,
                                timeout=COLLECTIVE_TIMEOUT)
        _comm_device = device if backend == 'nccl' else torch.device('cpu')
    return device


def comm_device():
    """Where tensors taking part in collectives must live (the CUDA device under nccl, else the CPU)."""
    return _comm_device


def shutdown():
    """Leave the process group (if any) at the end of a command, once every rank got there: exiting with a live
    gloo group, or tearing it down while a peer still uses it, can abort or hang the process."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def get_rank():
    return dist.get_rank() if dist.is_initialized() else 0


def get_world_size():
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier():
    if dist.is_initialized():
        dist.barrier()


def print0(*args, **kwargs):
    if get_rank() == 0:
        print(*args, **kwargs)
