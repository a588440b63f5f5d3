"""The TF1-legacy bilinear front end against an independent numpy gather implementation."""

import numpy as np
import pytest
import torch

from edm_bdia.fid.resize import inception_normalize, tf1_bilinear_resize


def _tf1_legacy_bilinear_numpy(image, out_h, out_w):
    """TF1 resize_bilinear(align_corners=False, half_pixel_centers=False): src = dst * in / out, floor, clamp."""
    in_h, in_w = image.shape[-2:]

    def axis(out_size, in_size):
        src = np.arange(out_size) * (in_size / out_size)
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, in_size - 1), src - low

    y0, y1, fy = axis(out_h, in_h)
    x0, x1, fx = axis(out_w, in_w)
    img = image.astype(np.float64)
    top = img[..., y0, :][..., x0] * (1 - fx) + img[..., y0, :][..., x1] * fx
    bottom = img[..., y1, :][..., x0] * (1 - fx) + img[..., y1, :][..., x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def _tolerance(height, width):
    """affine_grid/grid_sample compute sampling positions in float32: up to ~4 * 2^-24 * size pixels off, which
    moves a bilinear sample by at most that fraction of a 0..255 step between neighbours (NVIDIA's detector has
    the same rounding)."""
    return 255 * 4 * 2.0 ** -24 * max(height, width)


@pytest.mark.parametrize('height, width', [(32, 32), (64, 64), (512, 384), (299, 299)])
def test_matches_tf1_legacy_gather_on_0_255_images(height, width):
    rng = np.random.default_rng(height + width)
    images = rng.integers(0, 256, (2, 3, height, width), dtype=np.uint8)
    ours = tf1_bilinear_resize(torch.from_numpy(images)).numpy()
    assert ours.dtype == np.float32 and ours.shape == (2, 3, 299, 299)
    assert np.abs(ours - _tf1_legacy_bilinear_numpy(images, 299, 299)).max() < _tolerance(height, width)


def test_tolerance_separates_tf1_legacy_from_half_pixel_resize():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32), dtype=np.uint8))
    half_pixel = torch.nn.functional.interpolate(images.float(), size=(299, 299), mode='bilinear',
                                                 align_corners=False)
    legacy = _tf1_legacy_bilinear_numpy(images.numpy(), 299, 299)
    assert np.abs(half_pixel.numpy() - legacy).max() > 1000 * _tolerance(32, 32)


def test_uint8_and_float_inputs_resize_identically():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(tf1_bilinear_resize(images), tf1_bilinear_resize(images.float()))


def test_normalisation_is_tf_graph_range():
    values = torch.tensor([0.0, 128.0, 255.0])
    assert inception_normalize(values).tolist() == [-1.0, 0.0, 0.9921875]
