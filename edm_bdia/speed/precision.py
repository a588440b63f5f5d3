"""16-bit UNet arithmetic (bf16 or fp16) with fp32 preconditioning, weights converted once.

The mechanism is NVlabs' own fp16 mode (docs/networks.md, 'fp16 mode') with a chosen dtype and without the per-call
weight casts: the preconditioner casts c_in·x to the UNet dtype while c_noise stays fp32, so the noise/label
embeddings and every block's `affine` Linear run in fp32 (their weights are left alone); convolutions and GroupNorms
run in 16 bits with weights stored in 16 bits, so each layer's `weight.to(x.dtype)` is a no-op; attention logits and
softmax stay fp32; the UNet output is cast back to fp32 before D = c_skip·x + c_out·F.

EDM2 networks (`edm_bdia.networks.edm2_precond.Precond`) keep their fp32 weights: each magnitude-preserving layer
normalises its weight in fp32 and casts it to the input's dtype (Eq. 66), and with the normalisation frozen
(`freeze_weight_normalization`, which every plan turns on) that 16-bit weight is made once and reused. The
preconditioner's model dtype is fixed to the 16-bit dtype, also on the CPU (EDM2 itself uses fp16 on CUDA only).
"""

import functools

from edm_bdia.networks.edm2_precond import Precond as EDM2Precond
from edm_bdia.networks.layers import Conv2d, GroupNorm
from edm_bdia.networks.precond import _Preconditioner
from edm_bdia.speed.modes import SpeedModeError


def _fixed_model_dtype(dtype, x, force_fp32):
    """Replacement for `_Preconditioner.model_dtype`: always `dtype` (fp32 calls would meet 16-bit weights)."""
    if force_fp32:
        raise SpeedModeError('force_fp32', f'is not possible: the UNet weights of this accelerated network are stored '
                                           f'in {dtype}; use mode reference for fp32 calls')
    return dtype


def takes_16_bit_unet(net):
    """True for the networks `lower_unet_precision` can convert (edm_bdia's EDM and EDM2 preconditioned
    networks)."""
    return isinstance(net, (_Preconditioner, EDM2Precond))


def lower_unet_precision(net, dtype):
    """Convert `net` (an edm_bdia preconditioner) in place: its UNet's Conv2d/GroupNorm tensors to `dtype` (EDM; an
    EDM2 network keeps its weights and casts them once per frozen layer), and the preconditioner's model dtype fixed
    to `dtype`. Returns the number of converted tensors."""
    if not takes_16_bit_unet(net):
        raise SpeedModeError('mode', f'{dtype} (16-bit UNet) needs an edm_bdia preconditioned network (EDMPrecond, '
                                     f'VPPrecond, EDM2 Precond, ...), not {type(net).__name__}; load it with '
                                     'edm_bdia.load_network, or use mode fast')
    converted = 0
    for module in () if isinstance(net, EDM2Precond) else net.model.modules():
        if isinstance(module, (Conv2d, GroupNorm)):
            converted += sum(1 for _ in module.parameters(recurse=False))
            module.to(dtype)  # parameters and the resample_filter buffer
    net.model_dtype = functools.partial(_fixed_model_dtype, dtype)
    return converted
