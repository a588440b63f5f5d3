"""What each speed mode means on each device: the `SpeedPlan` of levers one adapter applies, and its checks.

`auto` is a pure function of the device's capabilities (no timing), so that a machine always makes the same plan
and a resumed run records the same manifest: bf16 where the CPU computes bf16 natively (AVX512_BF16, AMX-BF16,
Arm BF16), else fp32 `fast`; fp16 on CUDA devices with tensor cores; the reference mode elsewhere. Precisions a
device would only emulate are never chosen, and `bf16` asked for by name on such a CPU is refused.
"""

import dataclasses

import torch

from edm_bdia.errors import ArgumentError
from edm_bdia.speed import hardware

MODES = ('reference', 'fast', 'bf16', 'fp16', 'auto')

# Samples per network call on CPU: large enough to keep the matrix kernels busy, small enough that one call's
# activations stay in the last-level cache (calls of 32 samples were slower per sample than calls of 8), and at most
# 7 samples of padding for a small batch. docs/performance.md has the measurements behind each constant here.
CPU_TILES = {'fast': 8, 'bf16': 8}
# The reference mode's tile when batch-size invariance is asked for (the generation engine on CPU and MPS): every
# network call holds the same number of samples, so a seed's image never depends on the batch it was sampled in,
# and each call is still NVlabs' arithmetic for a batch of that size. A batch smaller than a tile is padded, on the
# CPU only up to a smaller size that gives the tile's bits (speed/tiling.py).
BATCH_INVARIANT_REFERENCE_TILE = 8
# `auto` on CUDA: a fixed tile, for batch-invariant images, of the size the GPU measurements used.
CUDA_AUTO_TILE = 64
# Activations NHWC (channels_last) where that layout is the faster one: on CPU in both precisions, on CUDA where
# cuDNN's 16-bit tensor-core kernels want it (its fp32 kernels were faster in NCHW).
CHANNELS_LAST = {'cpu': {'fast': True, 'bf16': True}, 'cuda': {'fast': False, 'bf16': True, 'fp16': True}}
CUDA_TENSOR_CORES = (7, 0)  # compute capability from which fp16 matrix products run on tensor cores


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
    chosen_by: str | None = None  # mode 'auto': why this mode was chosen; None: the mode was asked for by name

    def record(self):
        """The plan as plain JSON-able values (for manifests)."""
        record = dict(mode=self.mode, tile=self.tile, channels_last=self.channels_last)
        if self.chosen_by is not None:
            record['auto'] = self.chosen_by
        return record


def _check_tile(tile):
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise SpeedModeError('tile', f'must be a positive integer (samples per network call) or None, got {tile!r}')


def _why_bf16_is_emulated(info):
    """'no amx_bf16 or avx512_bf16', or the oneDNN cap that hides the CPU's bf16 instructions."""
    native = hardware.NATIVE_BF16_FLAGS.get(info.architecture, ('bf16 instructions',))
    if any(flag in info.flags for flag in native):
        return f'ONEDNN_MAX_CPU_ISA caps oneDNN at {info.onednn_cap}, below its bf16 kernels'
    return f'no {" or ".join(native)}'


def auto_mode(device):
    """(mode, reason) that `auto` picks for `device`, from its capabilities alone."""
    device = torch.device(device)
    if device.type == 'cpu':
        info = hardware.cpu_info()
        if info.native_bf16:
            native = [flag for flag in hardware.NATIVE_BF16_FLAGS[info.architecture] if flag in info.usable_flags]
            return 'bf16', f'bf16: native on this CPU ({", ".join(native)})'
        return 'fast', f'fp32: bf16 would be emulated on this CPU ({_why_bf16_is_emulated(info)})'
    if device.type == 'cuda':
        capability = torch.cuda.get_device_capability(device)
        if capability >= CUDA_TENSOR_CORES:
            return 'fp16', f'fp16: tensor cores (compute capability {capability[0]}.{capability[1]})'
        return 'fast', f'fp32: no fp16 tensor cores (compute capability {capability[0]}.{capability[1]})'
    return 'reference', f'reference: the only mode on {device.type}'


def _auto_plan(device, tile, compile, cuda_graphs, channels_last):
    """`auto`: the mode of auto_mode with a fixed tile on every device, so images are batch-invariant."""
    mode, reason = auto_mode(device)
    if tile is None:
        tile = (CPU_TILES.get(mode, BATCH_INVARIANT_REFERENCE_TILE) if device.type != 'cuda' else CUDA_AUTO_TILE)
    plan = make_plan(mode, device, tile=tile, compile=compile, cuda_graphs=cuda_graphs, channels_last=channels_last)
    return dataclasses.replace(plan, chosen_by=reason)


def _check_native_bf16(allow_emulated_bf16):
    info = hardware.cpu_info()
    if not info.native_bf16 and not allow_emulated_bf16:
        raise SpeedModeError('mode', f'bf16 is emulated on this CPU ({info.model}: {_why_bf16_is_emulated(info)}) '
                                     'and runs several times slower than fp32; use `mode` fast or auto (Python: '
                                     'allow_emulated_bf16=True runs it anyway)')


def make_plan(mode='reference', device='cpu', *, tile=None, batch_invariant=False, compile=False, cuda_graphs=False,
              channels_last=None, allow_emulated_bf16=False):
    """Check the request against the device and return the SpeedPlan; SpeedModeError on a bad combination.

    `tile` and `channels_last` default (None) to the measured choice for the mode and device. `batch_invariant`:
    on CPU and MPS, give the reference mode a fixed tile too, so that outputs do not depend on the batch size
    (`auto` always uses a fixed tile). `allow_emulated_bf16`: run mode bf16 on a CPU without bf16 hardware.
    """
    device = torch.device(device)
    if mode not in MODES:
        raise SpeedModeError('mode', f'{mode!r} is not a speed mode; use one of {", ".join(MODES)}')
    _check_tile(tile)
    if mode == 'auto':
        return _auto_plan(device, tile, compile, cuda_graphs, channels_last)
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
        raise SpeedModeError('mode', 'fp16 needs a CUDA device (CPUs have no fast fp16 kernels); use `mode` bf16 '
                                     'or auto')
    if mode == 'bf16' and device.type == 'cpu':
        _check_native_bf16(allow_emulated_bf16)
    if cuda_graphs and device.type != 'cuda':
        raise SpeedModeError('cuda_graphs', 'needs a CUDA device; leave it off on the CPU')
    if tile is None and device.type == 'cpu':
        tile = CPU_TILES[mode]
    if channels_last is None:
        channels_last = CHANNELS_LAST[device.type][mode]
    unet_dtype = {'fast': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[mode]
    return SpeedPlan(mode, unet_dtype, bool(channels_last), tile, bool(compile), bool(cuda_graphs))


def fit_to_network(plan, net, *, is_module, is_preconditioned):
    """An `auto` plan adjusted to a network that cannot take its pick: the reference mode for a network that is not
    a torch.nn.Module, fp32 for one that is not an EDM preconditioned network (16-bit UNets need one). Plans asked
    for by name come back unchanged (the adapter then refuses what the network cannot do)."""
    if plan.chosen_by is None:
        return plan
    if plan.mode != 'reference' and not is_module:
        return dataclasses.replace(plan, mode='reference', unet_dtype=None, channels_last=False, compile=False,
                                   cuda_graphs=False, chosen_by=f'{plan.chosen_by}; reference: the network is a '
                                                                f'{type(net).__name__}, not a torch module')
    if plan.unet_dtype is not None and not is_preconditioned:
        return dataclasses.replace(plan, mode='fast', unet_dtype=None, chosen_by=f'{plan.chosen_by}; fp32: a '
                                   f'16-bit UNet needs an EDM preconditioned network, not {type(net).__name__}')
    return plan
