"""DINOv2 weights: the resolution order (explicit file or URL > NVlabs' torch hub cache > torch's hub cache >
download cache > download), reading without running code, and one clear error for every bad file."""

import os

import numpy as np
import pytest
import torch

from edm_bdia.checkpoints.download import cache_path
from edm_bdia.fid import dinov2_weights
from edm_bdia.fid.dinov2_weights import DINOV2_FILE, DINOV2_URL, DINOv2WeightsError
from helpers.dinov2 import reference_features, save_dinov2_weights, tiny_dinov2_state
from helpers.fid import tiny_inception

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Empty caches everywhere, offline."""
    for variable, folder in (('EDM_BDIA_CACHE_DIR', 'cache'), ('DNNLIB_CACHE_DIR', 'dnnlib'), ('TORCH_HOME', 'torch')):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    return tmp_path


def _place(path, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return save_dinov2_weights(path, seed=seed)


def test_resolution_order(isolated):
    nvlabs_hub = isolated / 'dnnlib' / 'torch_hub' / 'checkpoints' / DINOV2_FILE
    torch_hub = isolated / 'torch' / 'hub' / 'checkpoints' / DINOV2_FILE
    download_cache = cache_path(DINOV2_URL)
    assert dinov2_weights.hub_cache_files() == [str(nvlabs_hub), str(torch_hub)]
    _place(download_cache)
    assert dinov2_weights.resolve_dinov2_weights() == (download_cache, 'cache')
    _place(torch_hub)
    assert dinov2_weights.resolve_dinov2_weights() == (str(torch_hub), 'torch hub cache')
    _place(nvlabs_hub)
    assert dinov2_weights.resolve_dinov2_weights('dinov2_vitl14') == (str(nvlabs_hub), 'torch hub cache')
    mine = _place(isolated / 'mine.pth')
    assert dinov2_weights.resolve_dinov2_weights(mine) == (mine, 'file')
    assert dinov2_weights.resolve_dinov2_weights((isolated / 'mine.pth').as_uri()) == (mine, 'file')


def test_a_url_goes_through_the_download_cache(isolated):
    url = 'https://example.org/weights/my_dinov2.pth'
    cached = _place(cache_path(url))
    assert dinov2_weights.resolve_dinov2_weights(url) == (cached, 'url')
    with pytest.raises(DINOv2WeightsError, match=r'^dinov2 https://example.org/other.pth: cannot download .*offline'):
        dinov2_weights.resolve_dinov2_weights('https://example.org/other.pth')


def test_missing_weights_offline_name_the_file_and_where_to_put_it(isolated):
    with pytest.raises(DINOv2WeightsError) as error:
        dinov2_weights.resolve_dinov2_weights()
    message = str(error.value)
    assert message.startswith('dinov2 dinov2_vitl14: no DINOv2 ViT-L/14 weights found; download ' + DINOV2_URL)
    assert cache_path(DINOV2_URL) in message and '\n' not in message
    with pytest.raises(DINOv2WeightsError, match=r"nope.pth: not a file, a URL or 'dinov2_vitl14'"):
        dinov2_weights.resolve_dinov2_weights('nope.pth')
    with pytest.raises(DINOv2WeightsError, match=r'a folder; pass the weights file itself'):
        dinov2_weights.load_dinov2_detector_with_info(str(isolated))


def test_loaded_detector_computes_the_reference_features(isolated):
    path = _place(cache_path(DINOV2_URL), seed=3)
    detector, info = dinov2_weights.load_dinov2_detector_with_info()
    assert info == dict(name='dinov2_vitl14', source='cache', path=path, bytes=os.path.getsize(path),
                        architecture='ViT 128 wide, 2 blocks, patch 14, grid 4', resize_mode='torch', precision='fp32')
    assert not any(parameter.requires_grad for parameter in detector.parameters())
    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = detector(images).double().numpy()
    expected = reference_features(tiny_dinov2_state(seed=3), images)
    assert np.abs(features - expected).max() < 1e-5 * np.abs(expected).max()


def test_half_precision_files_load_as_float32(tmp_path):
    state = {name: value.half() for name, value in tiny_dinov2_state().items()}
    torch.save(state, tmp_path / 'half.pth')
    network, _ = dinov2_weights.dinov2_from_state_dict(dinov2_weights.read_state_dict(tmp_path / 'half.pth'), 'half')
    assert all(parameter.dtype == torch.float32 for parameter in network.parameters())


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _bad_files(folder):
    """name -> (path, expected error text)"""
    good = save_dinov2_weights(folder / 'good.pth')
    data = open(good, 'rb').read()
    (folder / 'truncated.pth').write_bytes(data[:len(data) // 2])
    torch.save(tiny_inception().state_dict(), folder / 'inception.pth')
    torch.save(dict(tiny_dinov2_state(), register_tokens=torch.zeros(1, 4, 128)), folder / 'registers.pth')
    without_block_tensor = tiny_dinov2_state()
    del without_block_tensor['blocks.1.ls2.gamma']
    torch.save(without_block_tensor, folder / 'incomplete.pth')
    torch.save(dict(tiny_dinov2_state(), **{'blocks.0.attn.qkv.weight': torch.zeros(3, 3)}), folder / 'shapes.pth')
    torch.save({'weights': _RunsCode(str(folder / 'ran'))}, folder / 'code.pth')
    torch.save([torch.zeros(3)], folder / 'list.pth')
    return {
        'truncated': 'truncated.pth: not a PyTorch weights file in torch.save\'s zip format (truncated or corrupt?',
        'inception': 'inception.pth: not DINOv2 ViT weights: no cls_token, pos_embed, patch_embed.proj.weight, '
                     'norm.weight (found layers.conv.weight',
        'registers': 'registers.pth: does not fit the DINOv2 ViT 128 wide, 2 blocks, patch 14, grid 4 layout: '
                     'Unexpected key(s) in state_dict: "register_tokens"',
        'incomplete': 'incomplete.pth: does not fit the DINOv2 ViT 128 wide, 2 blocks, patch 14, grid 4 layout: '
                      'Missing key(s) in state_dict: "blocks.1.ls2.gamma"',
        'shapes': 'shapes.pth: does not fit the DINOv2 ViT 128 wide, 2 blocks, patch 14, grid 4 layout: size mismatch '
                  'for blocks.0.attn.qkv.weight',
        'code': 'code.pth: holds objects other than tensors, and unpickling those could run code; refused',
        'list': 'list.pth: not a state dict',
    }


def test_bad_weight_files_give_one_line_naming_the_file(tmp_path):
    for name, expected in _bad_files(tmp_path).items():
        with pytest.raises(DINOv2WeightsError) as error:
            dinov2_weights.load_dinov2_detector_with_info(str(tmp_path / f'{name}.pth'))
        message = str(error.value)
        assert message.startswith('dinov2 ') and expected in message and '\n' not in message, (name, message)
    assert not os.path.exists(tmp_path / 'ran')  # the pickled call was never made
