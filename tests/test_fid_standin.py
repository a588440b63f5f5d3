"""Every stand-in FID detector format (tests/helpers/fid.py) loads back exactly: TorchScript without torch.jit, an
NVIDIA-style pickle without running its code, a trusted pickle running its embedded module; other layouts are
refused."""

import pytest
import torch

from edm_bdia.fid import detector as fid_detector
from edm_bdia.fid.inception import InceptionV3
from helpers.fid import (TINY_WIDTH_DIVISOR, TRUSTED_STANDIN_DIM, ExportedLayers, random_images,
                         save_nvidia_style_pickle, save_torchscript, save_trusted_standin, tiny_inception)


# ---- the formats load back exactly ------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny():
    return tiny_inception(seed=1)


def _same_features(a, b, images):
    with torch.no_grad():
        return torch.equal(a(images, return_features=True), b(images, return_features=True))


def test_torchscript_archive_loads_into_our_inception_without_jit(tiny, tmp_path, monkeypatch):
    path = save_torchscript(tiny, tmp_path / 'tiny.pt')
    monkeypatch.setattr(torch.jit, 'load', None)  # the loader must not need it
    loaded, info = fid_detector.load_detector_with_info(str(path))
    assert isinstance(loaded, InceptionV3) and loaded.feature_dim == 2048 // TINY_WIDTH_DIVISOR
    assert info['source'] == 'file' and len(info['sha256']) == 64
    assert _same_features(tiny, loaded, random_images(3))


def test_nvidia_style_pickle_loads_safely_without_running_its_source(tiny, tmp_path):
    path = save_nvidia_style_pickle(tiny, tmp_path / 'tiny.pkl')
    loaded, info = fid_detector.load_detector_with_info(str(path))
    assert isinstance(loaded, InceptionV3) and 'pickle' in info['implementation']
    assert _same_features(tiny, loaded, random_images(3))


def test_trusted_pickle_runs_the_embedded_module(tmp_path):
    path = save_trusted_standin(tmp_path / 'standin.pkl')
    with pytest.raises(fid_detector.DetectorError, match='TinyDetector.*allow trust_pickle_code') as error:
        fid_detector.load_detector(str(path))
    spell = {'detector': '--detector', 'trust_pickle_code': '--trust-pickle-code'}.get  # as a command line does
    assert error.value.worded(spell).startswith('--detector cannot load') and '--trust-pickle-code' in \
        error.value.worded(spell) and '--' not in str(error.value)
    loaded = fid_detector.load_detector(str(path), trust_pickle_code=True)
    assert type(loaded).__name__ == 'TinyDetector'
    images = random_images(5)
    features = loaded(images, return_features=True)
    # Independent expectation: the same maths written out here.
    weight = torch.randn(TRUSTED_STANDIN_DIM, 3, 4, 4, generator=torch.Generator().manual_seed(4)) / 16
    x = torch.nn.functional.conv2d(images.float() / 127.5 - 1, weight, stride=2)
    assert torch.allclose(features, torch.cat([x.relu().mean((2, 3)), x.square().mean((2, 3))], 1), atol=1e-6)


def test_weights_of_another_layout_are_rejected_with_the_file_named(tmp_path):
    path = tmp_path / 'other.pt'
    torch.jit.script(ExportedLayers(torch.nn.Sequential(torch.nn.Linear(2, 2)))).save(str(path))
    with pytest.raises(fid_detector.DetectorError, match='detector .*other.pt: no Inception-v3 weights'):
        fid_detector.load_detector(str(path))
