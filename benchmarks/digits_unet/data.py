"""scikit-learn's digits at the UNet's resolution, and the digit classifier that judges samples at any resolution.

The split is the solver study's (benchmarks/study/digits.py: every fifth image held out, 1437 train / 360 held
out). Upscaling is bilinear (half-pixel centres), so a 16x16 digit is smooth rather than blocky; the classifier
(logistic regression on the 8x8 training digits) sees images averaged back down to 8x8.
"""

import torch

from ..study.digits import digit_classifier, load_digits_split

RESOLUTION = 16


def upscale(images, resolution=RESOLUTION):
    """[n, 1, 8, 8] in [-1, 1] -> [n, 1, resolution, resolution], bilinear, in float32."""
    return torch.nn.functional.interpolate(images.float(), size=(resolution, resolution), mode='bilinear',
                                           align_corners=False)


def upscaled_split(resolution=RESOLUTION):
    """(train images, train labels, held-out images, held-out labels) at `resolution`, float32 in [-1, 1]."""
    train_x, train_y, held_x, held_y = load_digits_split()
    return upscale(train_x, resolution), train_y, upscale(held_x, resolution), held_y


def to_8x8(images):
    """Images of any multiple of 8 pixels, averaged down to 8x8 (float64)."""
    return torch.nn.functional.adaptive_avg_pool2d(images.double(), 8)


def image_classifier():
    """predict(images [n, 1, R, R] in [-1, 1]) -> int64 digit labels [n], for R any multiple of 8."""
    predict_8x8 = digit_classifier()
    return lambda images: predict_8x8(to_8x8(images))
