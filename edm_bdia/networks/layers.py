"""Primitive layers of the EDM networks: Linear, Conv2d (with resampling), GroupNorm and weight init.

Our own implementation of NVlabs' layers (docs/networks.md, 'Layers'). Every layer casts its own tensors to the
input's dtype before use (a no-op in fp32; docs/networks.md, 'fp16 mode' otherwise), and adds biases as a separate
elementwise step, because fusing them into the GEMM/convolution changes bits (docs/networks.md, 'Linear bias added
separately' and 'Convolution bias added separately').
"""

import numpy as np
import torch
from torch_utils import persistence

INIT_MODES = ('xavier_uniform', 'xavier_normal', 'kaiming_uniform', 'kaiming_normal')


def weight_init(shape, mode, fan_in, fan_out):
    """Draw a tensor of `shape` from the base distribution of `mode` (docs/networks.md, 'Initialisation')."""
    if mode not in INIT_MODES:
        raise ValueError(f'init_mode: unknown value {mode!r}; use one of {", ".join(INIT_MODES)}')
    draw = torch.rand(*shape) if mode.endswith('uniform') else torch.randn(*shape)
    if draw.is_meta:
        return draw  # a meta tensor: no values to scale (see `scaled`)
    if mode == 'xavier_uniform':
        return (draw * 2 - 1) * np.sqrt(6 / (fan_in + fan_out))
    if mode == 'xavier_normal':
        return draw * np.sqrt(2 / (fan_in + fan_out))
    if mode == 'kaiming_uniform':
        return (draw * 2 - 1) * np.sqrt(3 / fan_in)
    return draw * np.sqrt(1 / fan_in)  # kaiming_normal


def scaled(tensor, factor):
    """tensor·factor, or the meta tensor itself: a network built on the meta device (as the pickle loader does,
    replacing every tensor afterwards) has no values to scale, and the first arithmetic on a meta tensor costs about
    a second (torch imports its compiler for the meta kernels)."""
    return tensor if tensor.is_meta else tensor * factor


def _init_parameters(module, weight_shape, has_bias, fan_in, fan_out, init_mode, init_weight, init_bias):
    """Register `weight` (base·init_weight) and, if wanted, `bias` (base·init_bias) on `module`."""
    module.weight = torch.nn.Parameter(scaled(weight_init(weight_shape, init_mode, fan_in, fan_out), init_weight))
    if has_bias:
        module.bias = torch.nn.Parameter(scaled(weight_init([weight_shape[0]], init_mode, fan_in, fan_out), init_bias))
    else:
        module.bias = None  # a plain attribute, not a registered parameter (docs/networks.md, 'Conventions')


@persistence.persistent_class
class Linear(torch.nn.Module):
    """Fully connected layer y = x·Wᵀ (+ b)."""

    def __init__(self, in_features, out_features, bias=True, init_mode='kaiming_normal', init_weight=1, init_bias=0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        _init_parameters(self, [out_features, in_features], bias, in_features, out_features,
                         init_mode, init_weight, init_bias)

    def forward(self, x):
        x = x @ self.weight.to(x.dtype).t()  # plain matmul, never F.linear(x, W, b)'s fused addmm (see module doc)
        if self.bias is not None:
            x = x.add_(self.bias.to(x.dtype))
        return x


def resample_filter_2d(taps):
    """Separable 2-D resampling filter outer(f, f) / (Σf)², shaped [1, 1, L, L].

    Which paths use it and how: docs/networks.md, 'Resampling filter'."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.is_meta:
        return f.new_empty(1, 1, f.numel(), f.numel())  # no values to compute (see `scaled`)
    return (torch.outer(f, f) / f.sum().square()).reshape(1, 1, f.numel(), f.numel())


@persistence.persistent_class
class Conv2d(torch.nn.Module):
    """2-D convolution with optional 2× up/down resampling through a fixed FIR filter.

    A kernel of 0 gives a pure resampler: no parameters, only the `resample_filter` buffer. The three forward
    paths and their paddings: docs/networks.md, 'Resampling filter'.
    """

    def __init__(self, in_channels, out_channels, kernel, bias=True, up=False, down=False, resample_filter=(1, 1),
                 fused_resample=False, init_mode='kaiming_normal', init_weight=1, init_bias=0):
        if up and down:
            raise ValueError('Conv2d: up and down are both true; choose at most one resampling direction')
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.up = up
        self.down = down
        self.fused_resample = fused_resample
        # The [1,1] (box) filter's up path is a copy: stride 2 with a 2×2 kernel of ones gives each output pixel one
        # product x·1 (docs/networks.md, 'Resampling filter').
        self.up_by_repeat = bool(up) and len(resample_filter) == 2 and resample_filter[0] == resample_filter[1]
        if kernel:
            _init_parameters(self, [out_channels, in_channels, kernel, kernel], bias, in_channels * kernel * kernel,
                             out_channels * kernel * kernel, init_mode, init_weight, init_bias)
        else:
            self.weight = None
            self.bias = None
        # Always registered (persistent); None, and so absent from the state_dict, when not resampling.
        self.register_buffer('resample_filter', resample_filter_2d(resample_filter) if up or down else None)

    def forward(self, x):
        w = self.weight.to(x.dtype) if self.weight is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        f = self.resample_filter.to(x.dtype) if self.resample_filter is not None else None
        w_pad = w.shape[-1] // 2 if w is not None else 0
        f_pad = (f.shape[-1] - 1) // 2 if f is not None else 0

        if self.fused_resample and self.up and w is not None:  # fused up (NVlabs' corrected padding)
            x = self._upsample(x, f, max(f_pad - w_pad, 0))
            x = torch.nn.functional.conv2d(x, w, padding=max(w_pad - f_pad, 0))
        elif self.fused_resample and self.down and w is not None:  # fused down: filter over the OUTPUT channels
            x = torch.nn.functional.conv2d(x, w, padding=w_pad + f_pad)
            x = _downsample(x, f, self.out_channels, 0)
        else:  # resample first, then convolve
            if self.up:
                x = self._upsample(x, f, f_pad)
            if self.down:
                x = _downsample(x, f, self.in_channels, f_pad)
            if w is not None:
                x = torch.nn.functional.conv2d(x, w, padding=w_pad)
        if b is not None:
            x = x.add_(b.reshape(1, -1, 1, 1))  # separate add, not conv2d(bias=...) (see module doc)
        return x

    def _upsample(self, x, f, padding):
        """2× up: depthwise transposed conv with 4·F2, stride 2 (docs/networks.md, 'Resampling filter')."""
        if self.up_by_repeat:
            return torch.nn.functional.interpolate(x, scale_factor=2, mode='nearest')  # the box filter: a copy
        if x.device.type == 'cpu' and x.dtype in (torch.bfloat16, torch.float16):
            # torch has no 16-bit CPU kernel for this grouped transposed convolution; its fallback is 10-60x slower
            # than fp32 on a copy, which gives the same values ([1,3,3,1]: 4 products per pixel, exact in fp32)
            return self._upsample(x.float(), f.float(), padding).to(x.dtype)
        return torch.nn.functional.conv_transpose2d(x, f.mul(4).tile([self.in_channels, 1, 1, 1]),
                                                    groups=self.in_channels, stride=2, padding=padding)


def _downsample(x, f, channels, padding):
    """2× down: depthwise conv with F2, stride 2."""
    return torch.nn.functional.conv2d(x, f.tile([channels, 1, 1, 1]), groups=channels, stride=2, padding=padding)


@persistence.persistent_class
class GroupNorm(torch.nn.Module):
    """Group normalisation with min(num_groups, C // min_channels_per_group) groups (torch's native kernel)."""

    def __init__(self, num_channels, num_groups=32, min_channels_per_group=4, eps=1e-5):
        super().__init__()
        self.num_groups = min(num_groups, num_channels // min_channels_per_group)
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(num_channels))
        self.bias = torch.nn.Parameter(torch.zeros(num_channels))

    def forward(self, x):
        if _bf16_group_norm_is_slow(x, self.num_groups):
            normed = torch.nn.functional.group_norm(x.float(), num_groups=self.num_groups, weight=self.weight.float(),
                                                    bias=self.bias.float(), eps=self.eps)
            return normed.to(x.dtype)  # the bf16 kernel's own recipe: fp32 statistics and output, rounded once
        return torch.nn.functional.group_norm(x, num_groups=self.num_groups, weight=self.weight.to(x.dtype),
                                              bias=self.bias.to(x.dtype), eps=self.eps)


# torch's CPU group_norm for channels-last bf16 is 1.7-2.6x slower than the fp32 kernel on a float copy when a group has
# at most 8 channels and the image at most 256 pixels (16×16); elsewhere it is faster (docs/performance.md,
# 'bf16 levers on the AMD EPYC (Zen 4)').
SLOW_BF16_GROUP_NORM = dict(max_channels_per_group=8, max_pixels=256)


def _bf16_group_norm_is_slow(x, num_groups):
    return (x.dtype == torch.bfloat16 and x.device.type == 'cpu' and x.dim() == 4
            and x.shape[1] // num_groups <= SLOW_BF16_GROUP_NORM['max_channels_per_group']
            and x.shape[2] * x.shape[3] <= SLOW_BF16_GROUP_NORM['max_pixels']
            and x.is_contiguous(memory_format=torch.channels_last))
