"""Front end of NVIDIA's FID detector: TF1-legacy bilinear resize to 299x299 and (x-128)/128.

The resize reproduces TensorFlow 1 ``resize_bilinear(align_corners=False)`` (source coordinate = dst * in/out,
no half-pixel centres, clamped upper neighbour, no antialias) through ``affine_grid``/``grid_sample`` (docs/fid.md,
'TF1-legacy resize'). It always runs in float32, whatever precision the network body uses.
"""

import torch
import torch.nn.functional as F

INCEPTION_SIZE = 299


def tf1_bilinear_resize(images: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Resize NCHW images (any dtype, values 0..255) to ``size`` x ``size`` in float32, TF1-legacy bilinear."""
    images = images.to(torch.float32)
    n, c, h, w = images.shape
    # With align_corners=False, output i samples ((2i+1)/size + t)*W/2 - 1/2 for a translation t (in [-1, 1]
    # units); t = 1/W - 1/size turns that into exactly i*W/size, TF1's legacy source coordinate.
    theta = torch.eye(2, 3, dtype=torch.float32, device=images.device)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, c, size, size], align_corners=False)
    # 'border' padding clamps the upper neighbour at the last row/column, like TF.
    return F.grid_sample(images, grid, mode='bilinear', padding_mode='border', align_corners=False)


def inception_normalize(images: torch.Tensor) -> torch.Tensor:
    """Map 0..255 to [-1, 0.9921875] the way the TF graph does: (x - 128) / 128."""
    return (images - 128) / 128
