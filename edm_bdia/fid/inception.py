"""Inception-v3, FID variant of TF's ``inception-2015-12-05`` graph, eager PyTorch (docs/fid.md, 'Inception network').

Module and parameter names follow NVIDIA's detector (``layers.<block>.<tower>.<conv>.{weight,beta,mean,var}`` and an
optional ``output.{weight,bias}``), so its weights load by name. FID-specific details of the TF graph:
batch norm without scale and eps 1e-3, average pools in the towers that do not count the padding, and a max pool in
the pool tower of the last block (``mixed_10``). Call interface identical to NVIDIA's:
``detector(uint8 NCHW, return_features=True) -> float32 [N, 2048]``.

``width_divisor`` shrinks every channel count (a cheap stand-in with the same structure, used by tests); the real
detector has ``width_divisor=1``.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F

from edm_bdia.fid.resize import inception_normalize, tf1_bilinear_resize

FEATURE_DIM = 2048
NUM_CLASSES = 1008
BATCH_NORM_EPS = 1e-3


class Conv2dLayer(torch.nn.Module):
    """Convolution without bias -> batch norm with running statistics and shift only -> ReLU."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = stride
        self.padding = padding
        self.eps = BATCH_NORM_EPS
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels, kh, kw))
        self.beta = torch.nn.Parameter(torch.zeros(out_channels))
        self.register_buffer('mean', torch.zeros(out_channels))
        self.register_buffer('var', torch.ones(out_channels))

    def forward(self, x):
        x = F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)
        # TF batch norm without scale: (x - mean) / sqrt(var + 1e-3) + beta.
        x = F.batch_norm(x, self.mean, self.var, weight=None, bias=self.beta, training=False, eps=self.eps)
        return F.relu(x)


def tower_avg_pool():
    """3x3 stride-1 average pool with SAME padding that averages only real pixels (TF's AvgPool)."""
    return torch.nn.AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False)


def tower_max_pool():
    """3x3 stride-1 max pool with SAME padding (the pool tower of ``mixed_10``)."""
    return torch.nn.MaxPool2d(kernel_size=3, stride=1, padding=1)


def _tower(**convs):
    return torch.nn.Sequential(OrderedDict(convs))


class InceptionA(torch.nn.Module):
    """35x35 block (``mixed``, ``mixed_1``, ``mixed_2``): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, in_channels, pool_channels, w):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, w(64), 1)
        self.tower = _tower(conv=Conv2dLayer(in_channels, w(48), 1), conv_1=Conv2dLayer(w(48), w(64), 5, padding=2))
        self.tower_1 = _tower(conv=Conv2dLayer(in_channels, w(64), 1), conv_1=Conv2dLayer(w(64), w(96), 3, padding=1),
                              conv_2=Conv2dLayer(w(96), w(96), 3, padding=1))
        self.tower_2 = _tower(pool=tower_avg_pool(), conv=Conv2dLayer(in_channels, pool_channels, 1))
        self.out_channels = w(64) + w(64) + w(96) + pool_channels

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], dim=1)


class InceptionB(torch.nn.Module):
    """35x35 -> 17x17 reduction (``mixed_3``): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, in_channels, w):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, w(384), 3, stride=2)
        self.tower = _tower(conv=Conv2dLayer(in_channels, w(64), 1), conv_1=Conv2dLayer(w(64), w(96), 3, padding=1),
                            conv_2=Conv2dLayer(w(96), w(96), 3, stride=2))
        self.out_channels = w(384) + w(96) + in_channels

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionC(torch.nn.Module):
    """17x17 block (``mixed_4`` .. ``mixed_7``) with factorised 7x7 convolutions."""

    def __init__(self, in_channels, c7, w):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.conv = Conv2dLayer(in_channels, w(192), 1)
        self.tower = _tower(conv=Conv2dLayer(in_channels, c7, 1), conv_1=Conv2dLayer(c7, c7, **row),
                            conv_2=Conv2dLayer(c7, w(192), **col))
        self.tower_1 = _tower(conv=Conv2dLayer(in_channels, c7, 1), conv_1=Conv2dLayer(c7, c7, **col),
                              conv_2=Conv2dLayer(c7, c7, **row), conv_3=Conv2dLayer(c7, c7, **col),
                              conv_4=Conv2dLayer(c7, w(192), **row))
        self.tower_2 = _tower(pool=tower_avg_pool(), conv=Conv2dLayer(in_channels, w(192), 1))
        self.out_channels = 4 * w(192)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], dim=1)


class InceptionD(torch.nn.Module):
    """17x17 -> 8x8 reduction (``mixed_8``): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, in_channels, w):
        super().__init__()
        self.tower = _tower(conv=Conv2dLayer(in_channels, w(192), 1), conv_1=Conv2dLayer(w(192), w(320), 3, stride=2))
        self.tower_1 = _tower(conv=Conv2dLayer(in_channels, w(192), 1),
                              conv_1=Conv2dLayer(w(192), w(192), (1, 7), padding=(0, 3)),
                              conv_2=Conv2dLayer(w(192), w(192), (7, 1), padding=(3, 0)),
                              conv_3=Conv2dLayer(w(192), w(192), 3, stride=2))
        self.out_channels = w(320) + w(192) + in_channels

    def forward(self, x):
        return torch.cat([self.tower(x), self.tower_1(x), F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(torch.nn.Module):
    """8x8 block (``mixed_9``, ``mixed_10``) with split 1x3 / 3x1 outputs; ``tower_2_pool`` is avg or max."""

    def __init__(self, in_channels, w, pool):
        super().__init__()
        row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
        self.conv = Conv2dLayer(in_channels, w(320), 1)
        self.tower_conv = Conv2dLayer(in_channels, w(384), 1)
        self.tower_mixed_conv = Conv2dLayer(w(384), w(384), **row)
        self.tower_mixed_conv_1 = Conv2dLayer(w(384), w(384), **col)
        self.tower_1_conv = Conv2dLayer(in_channels, w(448), 1)
        self.tower_1_conv_1 = Conv2dLayer(w(448), w(384), 3, padding=1)
        self.tower_1_mixed_conv = Conv2dLayer(w(384), w(384), **row)
        self.tower_1_mixed_conv_1 = Conv2dLayer(w(384), w(384), **col)
        self.tower_2_pool = pool
        self.tower_2_conv = Conv2dLayer(in_channels, w(192), 1)
        self.out_channels = w(320) + 4 * w(384) + w(192)

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], dim=1)


def build_layers(width_divisor: int = 1) -> torch.nn.Sequential:
    """The ``layers`` trunk: 299x299 normalised input -> [N, 2048/width_divisor, 1, 1] pool3 features."""
    def w(channels):
        return channels // width_divisor

    blocks = OrderedDict(
        conv=Conv2dLayer(3, w(32), 3, stride=2),
        conv_1=Conv2dLayer(w(32), w(32), 3),
        conv_2=Conv2dLayer(w(32), w(64), 3, padding=1),
        pool0=torch.nn.MaxPool2d(kernel_size=3, stride=2),
        conv_3=Conv2dLayer(w(64), w(80), 1),
        conv_4=Conv2dLayer(w(80), w(192), 3),
        pool1=torch.nn.MaxPool2d(kernel_size=3, stride=2),
    )
    channels = w(192)
    mixed = [('mixed', lambda c: InceptionA(c, w(32), w)), ('mixed_1', lambda c: InceptionA(c, w(64), w)),
             ('mixed_2', lambda c: InceptionA(c, w(64), w)), ('mixed_3', lambda c: InceptionB(c, w)),
             ('mixed_4', lambda c: InceptionC(c, w(128), w)), ('mixed_5', lambda c: InceptionC(c, w(160), w)),
             ('mixed_6', lambda c: InceptionC(c, w(160), w)), ('mixed_7', lambda c: InceptionC(c, w(192), w)),
             ('mixed_8', lambda c: InceptionD(c, w)), ('mixed_9', lambda c: InceptionE(c, w, tower_avg_pool())),
             ('mixed_10', lambda c: InceptionE(c, w, tower_max_pool()))]
    for name, make in mixed:
        blocks[name] = make(channels)
        channels = blocks[name].out_channels
    blocks['pool2'] = torch.nn.AvgPool2d(kernel_size=8)
    return torch.nn.Sequential(blocks)


class InceptionV3(torch.nn.Module):
    """NVIDIA-compatible FID detector: uint8 NCHW RGB of any size -> pool3 features (or 1008-way softmax)."""

    def __init__(self, width_divisor: int = 1, with_output: bool = False):
        super().__init__()
        self.feature_dim = FEATURE_DIM // width_divisor
        self.layers = build_layers(width_divisor)
        self.output = torch.nn.Linear(self.feature_dim, NUM_CLASSES) if with_output else None

    def forward(self, img, return_features=False, use_fp16=False, no_output_bias=False):
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f'detector input must be NCHW with 3 channels, got shape {tuple(img.shape)}')
        if use_fp16:
            raise ValueError('use_fp16=True is not supported: this detector computes FID features in float32')
        x = inception_normalize(tf1_bilinear_resize(img))
        features = self.layers(x).reshape(x.shape[0], self.feature_dim).to(torch.float32)
        if return_features:
            return features
        if self.output is None:
            raise ValueError('these detector weights have no 1008-way output layer; call with return_features=True')
        logits = F.linear(features, self.output.weight, None if no_output_bias else self.output.bias)
        return F.softmax(logits, dim=1)
