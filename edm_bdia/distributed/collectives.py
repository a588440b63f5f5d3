"""Collectives that never leave a rank waiting: a failure on any rank becomes the same error on every rank."""

import contextlib
import pickle

import torch
import torch.distributed as dist

from edm_bdia.distributed.process_group import comm_device, get_rank


class RankFailure(RuntimeError):
    """Raised on every rank when at least one rank reported an error. Carries the first failing rank's message,
    its rank and, where it could be sent between processes, its exception (`error`), so that every rank can word
    it the same way; `error` is None when the exception could not be pickled."""

    def __init__(self, message, rank=0, error=None):
        super().__init__(message)
        self.message = message
        self.rank = rank
        self.error = error


def _portable(error):
    """`error` if it survives pickling (to be broadcast to the other ranks), else None."""
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 -- any failure means: send the message only
        return None


def error_message(error):
    """One line describing `error`: exceptions with a prepared message (`format_message()`, as command-line
    errors have) keep their own text, the package's own errors their message, others get their type name."""
    if isinstance(error, RankFailure):
        return error.message
    format_message = getattr(error, 'format_message', None)
    if callable(format_message):
        return format_message()
    text = str(error).strip()
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def all_reduce_sum_(tensor):
    """Sum `tensor` over all ranks in place (any dtype gloo/nccl support; CPU tensors also work under nccl)."""
    if not dist.is_initialized():
        return tensor
    if tensor.device == comm_device():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    else:
        staged = tensor.to(comm_device())
        dist.all_reduce(staged, op=dist.ReduceOp.SUM)
        tensor.copy_(staged)
    return tensor


def check_all_ranks(error=None):
    """Collective. If any rank passes an exception, every rank raises RankFailure with the lowest failing rank's
    message, prefixed by its rank; otherwise returns on every rank. A single process (no process group) raises the
    exception itself, so the Python API raises what the library raised (a ValueError for a bad argument, ...)."""
    if not dist.is_initialized():
        if error is not None:
            raise error
        return
    rank, world_size = dist.get_rank(), dist.get_world_size()
    first = torch.tensor([rank if error is not None else world_size], dtype=torch.int64, device=comm_device())
    dist.all_reduce(first, op=dist.ReduceOp.MIN)
    first = int(first.item())
    if first == world_size:
        return
    report = [None]
    if rank == first:
        text = error_message(error)
        if isinstance(error, RankFailure):  # already reported by its own rank: pass it on unchanged
            report = [(text, error.rank, error.error)]
        else:
            report = [(f'rank {rank}: {text}', rank, _portable(error))]
    dist.broadcast_object_list(report, src=first, device=comm_device())
    text, failed_rank, original = report[0]
    raise RankFailure(text, rank=failed_rank, error=original) from error


@contextlib.contextmanager
def all_ranks():
    """Collective: run the block on every rank, then report: an exception on any rank becomes the same RankFailure
    on all of them (see check_all_ranks), so no rank is left waiting in a later collective. Every rank must enter
    the block, also one with nothing to do there."""
    error = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 -- reported to every rank by check_all_ranks
        error = exc
    check_all_ranks(error)


@contextlib.contextmanager
def rank_zero_first():
    """Rank 0 runs the body (e.g. a download into the cache) while the others wait; then the others run it.
    An exception in the body on any rank becomes RankFailure on every rank."""
    rank = get_rank()
    if rank != 0:
        check_all_ranks(None)  # the first round: rank 0's body, reported when rank 0 leaves `all_ranks`
    with all_ranks():
        yield
    if rank == 0:
        check_all_ranks(None)  # the second round: the other ranks' bodies
