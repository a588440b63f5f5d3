"""Front end of the FD_DINOv2 detector: resize to 224x224 and ImageNet normalisation, as NVlabs' EDM2 metrics
prepare images for DINOv2 (docs/fid.md, 'DINOv2 front end').

Two resize modes, both bicubic:

* ``'torch'`` (default, NVlabs' default): ``F.interpolate(mode='bicubic', antialias=True)`` on the float32 pixels,
  no rounding; with antialias, PyTorch uses PIL's kernel (a = -0.5, stretched by the downscale factor);
* ``'pil'``: PIL's ``Image.resize(BICUBIC)`` on each uint8 image, rounded to uint8 as PIL does (the dgm-eval
  reference of Stein et al. 2023; slow, runs on the CPU).

Then x / 255, minus ImageNet's mean, divided by its std, per channel.
"""

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from edm_bdia.errors import ArgumentError

DINOV2_SIZE = 224
RESIZE_MODES = ('torch', 'pil')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torch_bicubic_resize(images: torch.Tensor, size: int = DINOV2_SIZE) -> torch.Tensor:
    """NCHW images (any dtype, 0..255) -> float32 [N, C, size, size], antialiased bicubic, not rounded."""
    return F.interpolate(images.to(torch.float32), size=(size, size), mode='bicubic', antialias=True)


def pil_bicubic_resize(images: torch.Tensor, size: int = DINOV2_SIZE) -> torch.Tensor:
    """uint8 NCHW RGB -> float32 [N, 3, size, size] holding PIL's uint8 bicubic resize of each image (on the CPU,
    returned on the images' device)."""
    pixels = images.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    resized = np.stack([np.asarray(PIL.Image.fromarray(image, 'RGB').resize((size, size), PIL.Image.BICUBIC))
                        for image in pixels])
    return torch.from_numpy(resized).permute(0, 3, 1, 2).to(device=images.device, dtype=torch.float32)


_RESIZERS = {'torch': torch_bicubic_resize, 'pil': pil_bicubic_resize}


def check_resize_mode(mode):
    if mode not in _RESIZERS:
        raise ArgumentError('resize_mode', f'{mode!r} is unknown; choose one of {", ".join(RESIZE_MODES)}')
    return mode


def dinov2_input(images: torch.Tensor, resize_mode: str = 'torch') -> torch.Tensor:
    """uint8 NCHW RGB 0..255 of any size -> the normalised float32 [N, 3, 224, 224] DINOv2 input."""
    x = _RESIZERS[check_resize_mode(resize_mode)](images) / 255
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).reshape(1, 3, 1, 1)
    return (x - mean) / std
