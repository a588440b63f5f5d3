"""What each speed mode means on each device: the `SpeedPlan` of levers one adapter applies, and its checks."""

import dataclasses

import torch

from edm_bdia.errors import ArgumentError

MODES = ('reference', 'fast', 'bf16', 'fp16')

# Samples per network call on CPU in the non-reference modes, chosen by measurement (benchmarks/throughput.py's
# tile sweep at user batch 32; docs/performance.md: 32-64 images per call are 13-25% slower per image than 1-8).
CPU_TILES = {'fast': 8, 'bf16': 8}
# The reference mode's tile when batch-size invariance is asked for (the generation engine on CPU and MPS): one
# sample per call, so a seed's image never depends on the batch it was sampled in (docs/performance.md).
BATCH_INVARIANT_REFERENCE_TILE = 1
# Activations NHWC (channels_last) by default where measured faster: on CPU, CIFAR-10 at tile 8 runs 5% (fp32) and
# 48% (bf16) faster in NHWC than in NCHW (benchmarks/results/throughput.md, Intel Xeon with AMX); cuDNN's
# fp16/bf16 tensor-core kernels are NHWC.
CHANNELS_LAST = {'cpu': {'fast': True, 'bf16': True}, 'cuda': {'fast': True, 'bf16': True, 'fp16': True}}


class SpeedModeError(ArgumentError):
    """An impossible speed-mode request; names the argument (`mode`, `tile`, ...) and says what to do."""


@dataclasses.dataclass(frozen=True)
class SpeedPlan:
    """The levers one adapter applies. `mode='reference'` keeps NVlabs' arithmetic for each call."""
    mode: str
    unet_dtype: torch.dtype | None  # None: the network's own choice (fp32, or fp16 for use_fp16 nets on CUDA)
    channels_last: bool
    tile: int | None  # samples per network call (the last tile padded); None: the whole batch in one call
    compile: bool
    cuda_graphs: bool

    def record(self):
        """The plan as plain JSON-able values (for manifests)."""
        return dict(mode=self.mode, tile=self.tile, channels_last=self.channels_last)


def _check_tile(tile):
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise SpeedModeError('tile', f'must be a positive integer (samples per network call) or None, got {tile!r}')


def make_plan(mode='reference', device='cpu', *, tile=None, batch_invariant=False, compile=False, cuda_graphs=False,
              channels_last=None):
    """Check the request against the device and return the SpeedPlan; SpeedModeError on a bad combination.

    `tile` and `channels_last` default (None) to the measured choice for the mode and device. `batch_invariant`:
    on CPU and MPS, give the reference mode a fixed tile too, so that outputs do not depend on the batch size.
    """
    device = torch.device(device)
    if mode not in MODES:
        raise SpeedModeError('mode', f'{mode!r} is not a speed mode; use one of {", ".join(MODES)}')
    _check_tile(tile)
    if mode == 'reference':
        if compile or cuda_graphs or channels_last:
            raise SpeedModeError('mode', "reference keeps the network's arithmetic bit-identical, so it takes no "
                                         "`compile`, `cuda_graphs` or `channels_last`; use `mode` fast for those")
        if tile is None and batch_invariant and device.type in ('cpu', 'mps'):
            tile = BATCH_INVARIANT_REFERENCE_TILE
        return SpeedPlan(mode, None, False, tile, False, False)
    if device.type not in ('cpu', 'cuda'):
        raise SpeedModeError('mode', f'{mode} exists for cpu and cuda only, not {device.type}; use `mode` reference '
                                     'on other devices')
    if mode == 'fp16' and device.type != 'cuda':
        raise SpeedModeError('mode', 'fp16 needs a CUDA device (CPUs have no fast fp16 kernels); use `mode` bf16')
    if cuda_graphs and device.type != 'cuda':
        raise SpeedModeError('cuda_graphs', 'needs a CUDA device; leave it off on the CPU')
    if tile is None and device.type == 'cpu':
        tile = CPU_TILES[mode]
    if channels_last is None:
        channels_last = CHANNELS_LAST[device.type][mode]
    unet_dtype = {'fast': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[mode]
    return SpeedPlan(mode, unet_dtype, bool(channels_last), tile, bool(compile), bool(cuda_graphs))
