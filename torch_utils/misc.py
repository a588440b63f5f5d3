"""Helpers that NVlabs-pickled sources call (docs/checkpoints.md, 'Pickle format version 6'): `constant`,
`const_like` (EDM2), `assert_shape`, `suppress_tracer_warnings`, `profiled_function`. Independent implementations,
no dnnlib."""

import contextlib
import functools
import warnings

import numpy as np
import torch

_constant_cache = {}


def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    """A cached constant tensor, keyed by value, shape, dtype, device and memory format."""
    value = np.asarray(value)
    if shape is not None:
        shape = tuple(shape)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if device is None:
        device = torch.device('cpu')
    if memory_format is None:
        memory_format = torch.contiguous_format
    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, torch.device(device), memory_format)
    tensor = _constant_cache.get(key)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor, _ = torch.broadcast_tensors(tensor, torch.empty(shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor


def const_like(ref, value, shape=None, dtype=None, device=None, memory_format=None):
    """`constant` with the dtype and device of the tensor `ref` unless given."""
    return constant(value, shape=shape, dtype=ref.dtype if dtype is None else dtype,
                    device=ref.device if device is None else device, memory_format=memory_format)


@contextlib.contextmanager
def suppress_tracer_warnings():
    """Silence torch.jit.TracerWarning inside the block (shape checks during tracing)."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        yield


def assert_shape(tensor, ref_shape):
    """Raise AssertionError unless `tensor.shape` matches `ref_shape`; None in `ref_shape` matches any size."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)}')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor) or isinstance(size, torch.Tensor):
            with suppress_tracer_warnings():  # symbolic sizes while tracing
                torch._assert(torch.equal(torch.as_tensor(size), torch.as_tensor(ref_size)),
                              f'Wrong size for dimension {idx}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size}')


def profiled_function(fn):
    """Decorator: run `fn` inside a torch.autograd.profiler.record_function range named after it."""
    @functools.wraps(fn)
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    return decorator
