"""Whether one network call, and one batch of float64 sampler state, of a given number of samples can fit in the
device's memory: estimates that refuse only what clearly cannot (a `--tile` or `--batch` of a million samples),
before any work."""

import math

import torch

from edm_bdia.errors import ArgumentError

# Bytes a network call holds per byte of float32 input, at the least: the four published EDM architectures hold
# 1700-2000 times their input in activations at their peak (docs/performance.md, 'Measurements on CPU', memory);
# half of that keeps the estimate below what any of them needs.
ACTIVATIONS_PER_INPUT_BYTE = 1000
# Float64 tensors of a batch's size that every sampler holds at once, at the least: the state, the next state, the
# denoised estimate and the derivative (Heun and BDIA hold more).
STATE_TENSORS = 4


def available_bytes(device):
    """The memory a call on `device` may take now: free CUDA memory, or the CPU's MemAvailable; None where unknown."""
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    if device.type != 'cpu':
        return None
    try:
        with open('/proc/meminfo') as f:
            fields = dict(line.split(':', 1) for line in f)
        return int(fields['MemAvailable'].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_call_memory(samples, net, device, argument):
    """ArgumentError naming `argument` when a call of `samples` samples to `net` would need more memory than `device`
    has available (estimated from the input size)."""
    per_sample = net.img_channels * net.img_resolution ** 2 * 4 * ACTIVATIONS_PER_INPUT_BYTE
    _check(samples, per_sample, device, argument, f'{samples} samples per network call')


def check_state_memory(samples, net, device, argument):
    """ArgumentError naming `argument` when a batch of `samples` samples keeps more float64 sampler state than
    `device` (where the state lives) has available."""
    per_sample = net.img_channels * net.img_resolution ** 2 * 8 * STATE_TENSORS
    _check(samples, per_sample, device, argument, f'gives batches of {samples} samples, whose float64 sampler state')


def _check(samples, per_sample, device, argument, subject):
    available = available_bytes(device)
    if available is None or samples * per_sample <= available:
        return
    fitting = max(available // per_sample, 1)
    raise ArgumentError(argument, f'{subject} would need about {samples * per_sample / 2 ** 30:.3g} GiB, '
                                  f'and {device.type} has {available / 2 ** 30:.3g} GiB available; use at most about '
                                  f'{2 ** int(math.log2(fitting))}')
