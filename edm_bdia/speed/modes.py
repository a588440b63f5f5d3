"""What each speed mode means on each device, and the checks of `accelerate`'s arguments."""

import dataclasses

import torch

MODES = ('reference', 'fast', 'bf16', 'fp16')

# Samples per network call on CPU in the non-reference modes, chosen by measurement (benchmarks/throughput.py's
# tile sweep at user batch 32; perf.md §2: 32-64 images per call are 13-25% slower per image than 1-8).
CPU_TILES = {'fast': 8, 'bf16': 8}
# Activations NHWC (channels_last) by default where measured faster: on CPU, CIFAR-10 at tile 8 runs 5% (fp32) and
# 48% (bf16) faster in NHWC than in NCHW (benchmarks/results/throughput.md; perf.md §5: +4-14% on AMD Zen4);
# cuDNN's fp16/bf16 tensor-core kernels are NHWC.
CHANNELS_LAST = {'cpu': {'fast': True, 'bf16': True}, 'cuda': {'fast': True, 'bf16': True, 'fp16': True}}


class SpeedModeError(ValueError):
    """An impossible speed-mode request; the message names the argument and what to do."""


@dataclasses.dataclass(frozen=True)
class SpeedPlan:
    """The levers one `accelerate` call applies."""
    mode: str
    unet_dtype: torch.dtype | None  # None: the network's own choice (fp32, or fp16 for use_fp16 nets on CUDA)
    channels_last: bool
    tile: int | None  # samples per network call (the last tile padded); None: the whole batch in one call
    compile: bool
    cuda_graphs: bool


def plan(mode, device, tile=None, compile=False, cuda_graphs=False, channels_last=None):
    """Check the request against the device and return the SpeedPlan; SpeedModeError on a bad combination.
    `tile` and `channels_last` default (None) to the measured choice for the mode and device."""
    if mode not in MODES:
        raise SpeedModeError(f'mode={mode!r} is not a speed mode; use one of {", ".join(MODES)}')
    if device.type not in ('cpu', 'cuda'):
        raise SpeedModeError(f'device={device.type!r}: speed modes exist for cpu and cuda only; use '
                             "mode='reference' on other devices")
    if mode == 'fp16' and device.type != 'cuda':
        raise SpeedModeError("mode='fp16' needs a CUDA device (CPUs have no fast fp16 kernels); use mode='bf16'")
    if cuda_graphs and device.type != 'cuda':
        raise SpeedModeError('cuda_graphs=True needs a CUDA device; leave it off on the CPU')
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise SpeedModeError(f'tile={tile!r} must be a positive integer (samples per network call) or None')
    if mode == 'reference':
        if tile is not None or compile or cuda_graphs or channels_last:
            raise SpeedModeError("mode='reference' keeps the network's arithmetic bit-identical, so it takes no "
                                 "tile, compile, cuda_graphs or channels_last; use mode='fast' for those")
        return SpeedPlan(mode, None, False, None, False, False)
    if tile is None and device.type == 'cpu':
        tile = CPU_TILES[mode]
    if channels_last is None:
        channels_last = CHANNELS_LAST[device.type][mode]
    unet_dtype = {'fast': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[mode]
    return SpeedPlan(mode, unet_dtype, bool(channels_last), tile, bool(compile), bool(cuda_graphs))
