"""Process-group set-up and failure-safe collectives for sharded generation and FID.

Differences from NVlabs' `torch_utils/distributed.py` (edm-format.md §5, §6.2):
* a single process creates no process group and binds no port, so concurrent runs never collide;
* rank/world come from torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or, when those are absent, from SLURM
  (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), so `srun python generate.py ...` works without torchrun;
* gloo on CPU (and MPS), nccl on CUDA; `torch.cuda.set_device` only on CUDA;
* `check_all_ranks` turns an error on any rank into the same `RankFailure` on every rank instead of a hang.
"""

import contextlib
import datetime
import os

import torch
import torch.distributed as dist

# How long a collective may wait for a slow rank (e.g. rank 0 downloading a 1.2 GB pickle first).
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=1)

_comm_device = torch.device('cpu')  # where collective tensors live: the CUDA device under nccl


class RankFailure(RuntimeError):
    """Raised on every rank when at least one rank reported an error; carries the first failing rank's message."""

    def __init__(self, message, rank=0):
        super().__init__(message)
        self.message = message
        self.rank = rank


def error_message(error):
    """One line describing `error`: click exceptions keep their own text, others get their type name."""
    if isinstance(error, RankFailure):
        return error.message
    format_message = getattr(error, 'format_message', None)  # click.ClickException and subclasses
    if callable(format_message):
        return format_message()
    text = str(error).strip()
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _launcher_env():
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


def resolve_device(device='auto', local_rank=0):
    """'auto' -> this rank's CUDA device if there is one, else cpu; 'cuda' -> cuda:LOCAL_RANK; 'cpu'; 'mps'."""
    device = str(device)
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError('--device cuda: this torch build sees no CUDA device; use --device cpu')
        return torch.device('cuda', local_rank % torch.cuda.device_count())
    if device == 'mps' and not (hasattr(torch.backends, 'mps') and torch.backends.mps.is_available()):
        raise ValueError('--device mps: MPS is not available on this machine; use --device cpu')
    return torch.device(device)


def init(device='auto'):
    """Join the process group the launcher describes (none for a single process) and return this rank's device."""
    global _comm_device
    rank, world_size, local_rank = _launcher_env()
    device = resolve_device(device, local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        dist.init_process_group(backend=backend, init_method='env://', rank=rank, world_size=world_size,
                                timeout=COLLECTIVE_TIMEOUT)
        _comm_device = device if backend == 'nccl' else torch.device('cpu')
    return device


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


def all_reduce_sum_(tensor):
    """Sum `tensor` over all ranks in place (any dtype gloo/nccl support; CPU tensors also work under nccl)."""
    if not dist.is_initialized():
        return tensor
    if tensor.device == _comm_device:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    else:
        staged = tensor.to(_comm_device)
        dist.all_reduce(staged, op=dist.ReduceOp.SUM)
        tensor.copy_(staged)
    return tensor


def check_all_ranks(error=None):
    """Collective. If any rank passes an exception, every rank raises RankFailure with the lowest failing rank's
    message (prefixed by its rank when there are several processes); otherwise returns on every rank."""
    if not dist.is_initialized():
        if error is not None:
            raise RankFailure(error_message(error), rank=0) from error
        return
    rank, world_size = dist.get_rank(), dist.get_world_size()
    first = torch.tensor([rank if error is not None else world_size], dtype=torch.int64, device=_comm_device)
    dist.all_reduce(first, op=dist.ReduceOp.MIN)
    first = int(first.item())
    if first == world_size:
        return
    message = [None]
    if rank == first:
        text = error_message(error)
        message = [text if isinstance(error, RankFailure) else f'rank {rank}: {text}']
    dist.broadcast_object_list(message, src=first, device=_comm_device)
    raise RankFailure(message[0], rank=first) from error


def attempt(action):
    """Collective: run `action()` on every rank and return its result; an exception on any rank becomes the same
    RankFailure on all of them (see check_all_ranks), so no rank is left waiting in a later collective."""
    result, error = None, None
    try:
        result = action()
    except Exception as exc:  # noqa: BLE001 -- reported to every rank by check_all_ranks
        error = exc
    check_all_ranks(error)
    return result


@contextlib.contextmanager
def rank_zero_first():
    """Rank 0 runs the body (e.g. a download into the cache) while the others wait; then the others run it.
    An exception in the body on any rank becomes RankFailure on every rank."""
    rank = get_rank()
    if rank != 0:
        check_all_ranks(None)  # released when rank 0 reports its outcome below
    error = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 -- reported to every rank, then re-raised as RankFailure
        error = exc
    if rank == 0:
        check_all_ranks(error)
    check_all_ranks(error if rank != 0 else None)
