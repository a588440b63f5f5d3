"""Checks that a network can carry an exact round trip (image -> noise -> image).

Inversion replays the denoiser calls of sampling at states it rebuilds to float64 rounding and divides by gamma_i,
so D must give the same output again. 1e-3 relative noise in D during inversion moved regenerated images (in
[-1, 1]) by 0.007 with the default O-BELM at 18 steps, 0.17 with BDIA-Heun gamma = 0.9 and 11 with gamma = 0.5 at
50 steps (toy model, benchmarks/bdia_defaults.py). Non-deterministic kernels break this outright. 16-bit
arithmetic and TF32 (10-bit mantissas inside float32 convolutions and matmuls) put ~1e-3 relative differences
between any two ways of computing the same call (batch size, tiling, the kernel a library picks for a shape, a
last-bit change of the input), where float32 differs by ~1e-7; on CPU with fixed tiles a bf16 round trip did
repeat exactly, but nothing promises that. Round trips therefore refuse 16-bit network arithmetic and TF32, and
check on the first call that the network gives the same output twice.
"""

import torch

from .guidance import GuidedDenoiser

SIXTEEN_BIT_MODES = ('bf16', 'fp16')


def _runs_on_cuda(net, x):
    device = getattr(net, 'net_device', None)  # an accelerated network may run away from the sampler state
    return x.device.type == 'cuda' or (device is not None and torch.device(device).type == 'cuda')


def check_exact_arithmetic(net, x):
    """ValueError when `net` (both networks of a guided one) computes in 16 bits or with TF32 (the sampler state `x`
    tells the device)."""
    for name, member in zip(('net', 'gnet'), net.networks() if isinstance(net, GuidedDenoiser) else (net,)):
        _check_network_arithmetic(member, x, name)
    if torch.get_float32_matmul_precision() != 'highest':
        raise ValueError(f"float32 matmul precision is {torch.get_float32_matmul_precision()!r} (TF32 or bf16 "
                         "inside float32 matmuls), which breaks exact inversion; call "
                         "torch.set_float32_matmul_precision('highest') for round trips")


def _check_network_arithmetic(net, x, name):
    mode = getattr(getattr(net, 'plan', None), 'mode', None)
    if mode in SIXTEEN_BIT_MODES:
        raise ValueError(f"{name} runs in speed mode {mode!r}, whose 16-bit rounding breaks exact inversion; use mode "
                         "'reference' or 'fast' for round trips")
    if _runs_on_cuda(net, x):
        if getattr(net, 'use_fp16', False):
            raise ValueError(f'{name} computes in float16 on CUDA (use_fp16=True), which breaks exact inversion; set '
                             f'{name}.use_fp16 = False for round trips')
        if torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32:
            raise ValueError('TF32 is enabled on CUDA, whose 10-bit rounding breaks exact inversion; set '
                             'torch.backends.cuda.matmul.allow_tf32 = False and torch.backends.cudnn.allow_tf32 = '
                             'False')


class RepeatabilityChecked:
    """`net` with the NVlabs interface whose first call is made twice and must give the same bits."""

    def __init__(self, net):
        self._net = net
        self._checked = False

    def __getattr__(self, name):
        if name in ('_net', '_checked'):  # not set yet (copy / unpickle)
            raise AttributeError(name)
        return getattr(self._net, name)

    def __call__(self, x, sigma, class_labels=None, **kwargs):
        out = self._net(x, sigma, class_labels, **kwargs)
        if not self._checked:
            again = self._net(x, sigma, class_labels, **kwargs)
            if not torch.equal(out, again):
                difference = ((out - again).abs().max() / out.abs().max()).item()
                raise ValueError(f'net gave different outputs for the same input (max relative difference '
                                 f'{difference:.1e}): non-deterministic kernels break exact inversion; call '
                                 'torch.use_deterministic_algorithms(True) and set torch.backends.cudnn.benchmark = '
                                 'False')
            self._checked = True
        return out


def exact_network(net, x):
    """`net` checked for exact round trips: refuses 16-bit and TF32 arithmetic, verifies its first call repeats."""
    check_exact_arithmetic(net, x)
    return net if isinstance(net, RepeatabilityChecked) else RepeatabilityChecked(net)
