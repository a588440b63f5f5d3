"""Image quantisation and crash-safe image files (PNG, grid PNG, OpenAI-style npz), written with `atomic_write`."""

import math

import numpy as np
import PIL.Image
import torch

from edm_bdia.files.atomic import atomic_write

def to_uint8(x):
    """NVlabs' exact quantisation (docs/generation.md): floor(127.5 x + 128) clipped to [0, 255], NCHW uint8."""
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


def to_hwc_arrays(images_uint8):
    """uint8 NCHW tensor -> uint8 NHWC numpy array on the CPU."""
    return images_uint8.permute(0, 2, 3, 1).cpu().numpy()


def pil_image(array_hwc):
    """uint8 HWC array -> PIL image: mode 'L' for one channel, 'RGB' for three (as NVlabs saves them)."""
    if array_hwc.ndim != 3 or array_hwc.shape[2] not in (1, 3):
        raise ValueError(f'images must have 1 or 3 channels, got shape {array_hwc.shape}')
    return PIL.Image.fromarray(array_hwc[:, :, 0] if array_hwc.shape[2] == 1 else array_hwc)


def save_png(array_hwc, path):
    """Atomically write one uint8 HWC image as PNG (PIL defaults, the bytes NVlabs' generate.py writes)."""
    image = pil_image(array_hwc)
    atomic_write(path, lambda f: image.save(f, format='PNG'))


def read_png(path):
    """PNG -> uint8 HWC array (one channel kept as a trailing axis of size 1)."""
    with PIL.Image.open(path) as image:
        array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def grid_array(images_hwc, max_images=64):
    """Tile the first `max_images` HWC images row by row into a near-square grid (empty cells black)."""
    images = np.asarray(images_hwc[:max_images])
    count, height, width, channels = images.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    grid = np.zeros([rows * cols, height, width, channels], dtype=np.uint8)
    grid[:count] = images
    return grid.reshape(rows, cols, height, width, channels).transpose(0, 2, 1, 3, 4).reshape(
        rows * height, cols * width, channels)


def save_grid(images_hwc, path, max_images=64):
    save_png(grid_array(images_hwc, max_images), path)


def save_npz(path, images_hwc, labels=None):
    """OpenAI evaluator convention: `arr_0` uint8 NHWC images, `arr_1` int64 class labels (conditional nets)."""
    arrays = {'arr_0': np.asarray(images_hwc, dtype=np.uint8)}
    if labels is not None:
        arrays['arr_1'] = np.asarray(labels, dtype=np.int64)
    atomic_write(path, lambda f: np.savez(f, **arrays))
