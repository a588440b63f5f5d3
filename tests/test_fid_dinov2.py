"""The DINOv2 network and detector against an independent float64 numpy restatement (tests/helpers/dinov2.py), on
tiny ViTs in the published key layout: the position grid resampled as Meta resamples it, native grids untouched,
ViT-L/14's exact layout, float32 features and bf16 only on request."""

import numpy as np
import pytest
import torch

from edm_bdia.errors import ArgumentError
from edm_bdia.fid.dinov2 import DinoVisionTransformer, resample_position_grid
from edm_bdia.fid.dinov2_detector import DINOv2Detector
from edm_bdia.fid.dinov2_weights import dinov2_from_state_dict
from helpers.dinov2 import (published_layout, reference_backbone, reference_features, reference_position_grid,
                            tiny_dinov2_state)

pytestmark = pytest.mark.usefixtures('one_thread')


def _images(count, size=224, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)


def _detector(state, **kwargs):
    return DINOv2Detector(dinov2_from_state_dict(state, 'test')[0], **kwargs).eval()


@pytest.mark.parametrize('grid', [4, 37])
def test_detector_equals_the_numpy_restatement(grid):
    """grid 37 is ViT-L/14's: resampled to the 16x16 patches of a 224x224 input, as in the real detector."""
    state = tiny_dinov2_state(grid=grid)
    images = _images(3)
    with torch.no_grad():
        features = _detector(state)(images)
    assert features.dtype == torch.float32 and features.shape == (3, 128)
    expected = reference_features(state, images)
    assert np.abs(features.double().numpy() - expected).max() < 1e-5 * np.abs(expected).max()


def test_native_grid_is_used_as_stored_and_other_sizes_resample():
    """An input of exactly grid x patch pixels uses the stored embedding (no resampling, as Meta's model); a
    non-square input resamples rows and columns separately."""
    state = tiny_dinov2_state(grid=4)
    network = dinov2_from_state_dict(state, 'test')[0].eval()
    rng = np.random.default_rng(0)
    for height, width in [(56, 56), (42, 70)]:
        x = rng.standard_normal((2, 3, height, width))
        with torch.no_grad():
            features = network(torch.from_numpy(x).float()).double().numpy()
        expected = reference_backbone(state, x)
        assert np.abs(features - expected).max() < 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize('rows, cols', [(16, 16), (3, 7), (40, 40)])
def test_position_grid_resampling_against_cubic_convolution(rows, cols):
    grid = torch.randn(1, 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    resampled = resample_position_grid(grid, rows, cols)[0].double().numpy()
    expected = reference_position_grid(grid[0].double().numpy(), rows, cols)
    assert resampled.shape == (rows * cols, 8)
    assert np.abs(resampled - expected).max() < 1e-5 * np.abs(expected).max()  # float32 positions and sums
    # The 0.1 offset is in the scale, not only in the size: resampling at scale rows / 37 would differ.
    plain = reference_position_grid(grid[0].double().numpy(), rows, cols, offset=0)
    assert np.abs(plain - expected).max() > 1e-3


def test_default_network_has_the_published_vitl14_layout():
    with torch.device('meta'):
        network = DinoVisionTransformer()
    shapes = {name: tuple(tensor.shape) for name, tensor in network.state_dict().items()}
    assert shapes == published_layout()  # 343 tensors, Meta's names
    assert sum(np.prod(shape) for shape in shapes.values()) == 304_368_640
    assert network.blocks[0].attn.num_heads == 16


def test_bf16_products_only_when_asked_and_features_stay_float32():
    state = tiny_dinov2_state(grid=4)
    images = _images(2)
    with torch.no_grad():
        exact = _detector(state)(images)
        fast = _detector(state, precision='bf16')(images)
    assert fast.dtype == torch.float32 and not torch.equal(exact, fast)
    assert (fast - exact).abs().max() < 0.05 * exact.abs().max()
    assert _detector(state).precision == 'fp32'


def test_detector_refuses_bad_calls_and_settings():
    detector = _detector(tiny_dinov2_state(grid=4))
    with pytest.raises(ValueError, match='3 channels'):
        detector(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match='no classifier'):
        detector(_images(1), return_features=False)
    with pytest.raises(ArgumentError, match="^precision 'fp8' is unknown"):
        _detector(tiny_dinov2_state(grid=4), precision='fp8')
    with pytest.raises(ArgumentError, match="^resize_mode 'area' is unknown"):
        _detector(tiny_dinov2_state(grid=4), resize_mode='area')
