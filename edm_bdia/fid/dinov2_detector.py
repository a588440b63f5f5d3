"""The FD_DINOv2 detector: uint8 images -> DINOv2 ViT-L/14 class-token features, float32 [N, 1024]
(docs/fid.md, 'DINOv2 detector').

Front end (edm_bdia.fid.dinov2_resize) in float32, then the backbone (edm_bdia.fid.dinov2) in float32, or, when
asked for, with its matrix products in bf16 / fp16 under autocast (norms, softmax and the residual stream stay in
float32); the features are returned in float32 either way. Called like NVIDIA's Inception detector,
``detector(images, return_features=True)``, so the metrics pipeline drives both detectors alike.
"""

import contextlib

import torch

from edm_bdia.errors import ArgumentError
from edm_bdia.fid.dinov2_resize import check_resize_mode, dinov2_input

PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def check_precision(precision):
    if precision not in PRECISIONS:
        raise ArgumentError('precision', f'{precision!r} is unknown; choose one of {", ".join(PRECISIONS)}')
    return precision


class DINOv2Detector(torch.nn.Module):
    """uint8 NCHW RGB 0..255 of any size -> float32 [N, embed_dim] features of `backbone`."""

    def __init__(self, backbone, resize_mode='torch', precision='fp32'):
        super().__init__()
        self.backbone = backbone
        self.resize_mode = check_resize_mode(resize_mode)
        self.precision = check_precision(precision)
        self.feature_dim = backbone.embed_dim

    def _products_precision(self, device):
        if self.precision == 'fp32':
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=PRECISIONS[self.precision])

    def forward(self, img, return_features=True):
        if not return_features:
            raise ValueError('the DINOv2 detector has no classifier; call it with return_features=True')
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f'detector input must be NCHW with 3 channels, got shape {tuple(img.shape)}')
        x = dinov2_input(img, self.resize_mode)
        with self._products_precision(x.device):
            features = self.backbone(x)
        return features.to(torch.float32)
