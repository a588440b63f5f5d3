"""The FD_DINOv2 front end: both resize modes against PIL (float and uint8 bicubic) and torch, the identity at
224x224, ImageNet normalisation."""

import numpy as np
import PIL.Image
import pytest
import torch

from edm_bdia.fid.dinov2_resize import (IMAGENET_MEAN, IMAGENET_STD, dinov2_input, pil_bicubic_resize,
                                        torch_bicubic_resize)

SIZES = [(32, 32), (64, 64), (300, 200), (512, 512)]


def _random(height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (2, 3, height, width), dtype=torch.uint8, generator=generator)


def _smooth(height, width):
    """Gradients without edges: bicubic overshoot (clipped by PIL's uint8 passes) stays away."""
    y, x = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing='ij')
    channels = [40 + 170 * x, 40 + 170 * y, 128 + 60 * np.sin(3 * x + 2 * y)]
    return torch.from_numpy(np.round(np.stack(channels))[None].astype(np.uint8))


def _pil_float_resize(images):
    """PIL's bicubic in float ('F' mode) per channel: no uint8 rounding between its passes."""
    return np.stack([np.stack([np.asarray(PIL.Image.fromarray(channel.numpy().astype(np.float32), 'F').resize(
        (224, 224), PIL.Image.BICUBIC)) for channel in image]) for image in images])


@pytest.mark.parametrize('height, width', SIZES)
def test_torch_mode_is_pils_bicubic_in_float(height, width):
    """antialias=True makes torch's bicubic PIL's filter (a = -0.5, widened by the downscale factor)."""
    images = _random(height, width)
    resized = torch_bicubic_resize(images)
    assert resized.dtype == torch.float32 and resized.shape == (2, 3, 224, 224)
    assert np.abs(resized.numpy() - _pil_float_resize(images)).max() < 1e-2  # of 0..255


@pytest.mark.parametrize('height, width', SIZES)
def test_pil_mode_is_pils_uint8_resize_of_each_image(height, width):
    images = _random(height, width)
    expected = np.stack([np.asarray(PIL.Image.fromarray(image.permute(1, 2, 0).numpy()).resize(
        (224, 224), PIL.Image.Resampling.BICUBIC)).transpose(2, 0, 1) for image in images])
    resized = pil_bicubic_resize(images)
    assert resized.dtype == torch.float32 and np.array_equal(resized.numpy(), expected)


@pytest.mark.parametrize('height, width', SIZES)
def test_modes_agree_within_rounding_on_smooth_images(height, width):
    """PIL rounds to uint8 after each of its two passes: up to 1.5 apart, 0.25 on average."""
    difference = (pil_bicubic_resize(_smooth(height, width)) - torch_bicubic_resize(_smooth(height, width))).abs()
    assert difference.max() <= 1.5 and difference.mean() < 0.35


def test_both_modes_leave_224_images_unchanged():
    images = _random(224, 224)
    assert torch.equal(torch_bicubic_resize(images), images.float())
    assert torch.equal(pil_bicubic_resize(images), images.float())


@pytest.mark.parametrize('mode', ['torch', 'pil'])
def test_normalisation_is_imagenets(mode):
    colour = torch.tensor([10, 128, 250], dtype=torch.uint8).reshape(1, 3, 1, 1).expand(1, 3, 50, 40)
    x = dinov2_input(colour, mode)
    expected = (np.array([10, 128, 250]) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert np.abs(x.numpy() - expected.reshape(1, 3, 1, 1)).max() < 1e-5
