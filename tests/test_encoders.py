"""EDM2 encoders (docs/networks.md, 'EDM2 encoders'; docs/checkpoints.md, 'The Stability VAE'): pixels <-> [-1, 1],
the VAE's whitened latents with a tiny random AutoencoderKL built from a config (no download), where the VAE comes
from (a folder, dnnlib's Hugging Face cache) and the one error when it is nowhere."""

import math
import pickle
import sys

import numpy as np
import pytest
import torch

from edm_bdia.networks import StabilityVAEEncoder, StandardRGBEncoder
from edm_bdia.networks.own_torch_utils import aliased_torch_utils
from edm_bdia.networks.stability_vae import VAEUnavailableError

VAE_NAME = 'stabilityai/sd-vae-ft-mse'
RAW_MEAN, RAW_STD = [5.81, 3.25, 0.12, -2.15], [4.17, 4.62, 3.71, 3.28]


def test_standard_rgb_maps_every_level_to_minus_one_one_and_back():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(2, 3, 16, 16)
    encoder = StandardRGBEncoder()
    latents = encoder.encode(levels)
    assert latents.dtype == torch.float32
    expected = torch.arange(256, dtype=torch.float64).reshape(1, 1, 16, 16) / 127.5 - 1
    torch.testing.assert_close(latents.double(), expected.expand(2, 3, 16, 16), rtol=0, atol=2 ** -23)
    assert torch.equal(encoder.encode_mean(levels), latents)  # nothing to sample
    assert torch.equal(encoder.encode(levels.float()), latents)  # 0-255 floats are the same pixels
    assert torch.equal(encoder.decode(latents), levels)


def test_standard_rgb_decode_rounds_to_the_nearest_level_and_clips():
    encoder = StandardRGBEncoder()
    levels = torch.tensor([0.0, 1, 17, 128, 254, 255], dtype=torch.float64)
    for offset in (-0.45, 0.0, 0.45):
        latents = ((levels + offset) / 127.5 - 1).to(torch.float32)
        expected = (levels + offset).round().clip(0, 255).to(torch.uint8)
        assert torch.equal(encoder.decode(latents), expected)
    assert encoder.decode(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_vae_constants_whiten_the_raw_latents():
    encoder = StabilityVAEEncoder()
    scale = 0.5 / np.array(RAW_STD)
    np.testing.assert_allclose(encoder.scale, scale, rtol=1e-7)
    np.testing.assert_allclose(encoder.bias, -np.array(RAW_MEAN) * scale, rtol=1e-6)
    assert encoder.scale.dtype == encoder.bias.dtype == np.float32 and encoder.batch_size == 8
    other = StabilityVAEEncoder(raw_mean=[1, 2, 3, 4], raw_std=[2, 2, 2, 2], final_mean=1, final_std=2)
    assert other.scale.tolist() == [1, 1, 1, 1] and other.bias.tolist() == [0, -1, -2, -3]


@pytest.fixture(scope='module')
def tiny_vae_folder(tmp_path_factory):
    """A tiny random AutoencoderKL (4 latent channels, 2x down-sampling) saved as a diffusers model folder."""
    diffusers = pytest.importorskip('diffusers')
    torch.manual_seed(0)
    vae = diffusers.models.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D'),
        up_block_types=('UpDecoderBlock2D', 'UpDecoderBlock2D'), block_out_channels=(8, 16), latent_channels=4,
        norm_num_groups=4, sample_size=16, layers_per_block=1)
    folder = tmp_path_factory.mktemp('tiny-vae')
    vae.save_pretrained(folder)
    return folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'dnnlib'))
    monkeypatch.delenv('EDM_BDIA_VAE_DIR', raising=False)
    return tmp_path / 'dnnlib'


def _images(count=5, size=16, seed=0):
    return torch.randint(0, 256, (count, 3, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def test_vae_encoding_and_decoding_against_the_formulas(tiny_vae_folder, offline, one_thread):
    from diffusers.models import AutoencoderKL  # pylint: disable=import-outside-toplevel
    vae = AutoencoderKL.from_pretrained(tiny_vae_folder).eval()
    encoder = StabilityVAEEncoder(batch_size=2)
    encoder.init('cpu', vae_dir=tiny_vae_folder)
    images = _images()
    scale = torch.tensor(encoder.scale).reshape(1, 4, 1, 1)
    bias = torch.tensor(encoder.bias).reshape(1, 4, 1, 1)
    with torch.no_grad():
        posterior = vae.encode(images.float() / 255).latent_dist
        raw = encoder.encode_pixels(images)
        assert raw.shape == (5, 8, 8, 8)  # mean and std, in batches of 2
        torch.testing.assert_close(raw, torch.cat([posterior.mean, posterior.std], dim=1), rtol=0, atol=1e-5)

        mean = encoder.encode_mean(images)
        torch.testing.assert_close(mean, posterior.mean * scale + bias, rtol=0, atol=1e-5)
        drawn = encoder.encode(images, generator=torch.Generator().manual_seed(3))
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(drawn, (posterior.mean + noise * posterior.std) * scale + bias, rtol=0, atol=1e-5)
        assert torch.equal(encoder.encode(images, generator=torch.Generator().manual_seed(3)), drawn)
        assert not torch.equal(drawn, mean)

        decoded = encoder.decode(mean)
        expected = (vae.decode((mean - bias) / scale).sample.clamp(0, 1) * 255).to(torch.uint8)
    assert decoded.dtype == torch.uint8 and decoded.shape == images.shape
    assert (decoded.int() - expected.int()).abs().max() <= 1  # batches of 2 against one batch of 5


def test_vae_is_never_pickled(tiny_vae_folder, offline):
    encoder = StabilityVAEEncoder()
    encoder.init('cpu', vae_dir=tiny_vae_folder)
    with aliased_torch_utils():
        blob = pickle.dumps(encoder)
    assert len(blob) < 20_000 and encoder._vae is not None
    state = pickle.loads(blob).__dict__
    assert state['_vae'] is None and state['vae_name'] == VAE_NAME
    assert state['_init_kwargs'] == {}


def test_vae_from_dnnlibs_hugging_face_cache(tiny_vae_folder, offline, one_thread):
    """The layout NVlabs' code leaves: <dnnlib cache>/diffusers/models--stabilityai--sd-vae-ft-mse/."""
    from diffusers.models import AutoencoderKL  # pylint: disable=import-outside-toplevel
    repo = offline / 'diffusers' / 'models--stabilityai--sd-vae-ft-mse'
    commit = '0123456789abcdef0123456789abcdef01234567'
    AutoencoderKL.from_pretrained(tiny_vae_folder).save_pretrained(repo / 'snapshots' / commit)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(commit)
    encoder = StabilityVAEEncoder()
    images = _images(count=2)
    with torch.no_grad():
        latents = encoder.encode_mean(images)  # loads the VAE on first use
        reference = StabilityVAEEncoder()
        reference.init('cpu', vae_dir=tiny_vae_folder)
        assert torch.equal(latents, reference.encode_mean(images))


def test_vae_folder_from_the_environment(tiny_vae_folder, offline, monkeypatch):
    monkeypatch.setenv('EDM_BDIA_VAE_DIR', str(tiny_vae_folder))
    encoder = StabilityVAEEncoder()
    with torch.no_grad():
        assert encoder.decode(torch.zeros(1, 4, 8, 8)).shape == (1, 3, 16, 16)


def test_missing_vae_names_both_places(offline, monkeypatch, tmp_path):
    pytest.importorskip('diffusers')
    with pytest.raises(VAEUnavailableError) as error:
        StabilityVAEEncoder().init('cpu')
    message = str(error.value)
    assert str(offline / 'diffusers') in message and "init's vae_dir" in message and '$EDM_BDIA_VAE_DIR' in message
    assert 'offline' in message and '\n' not in message
    (tmp_path / 'empty').mkdir()
    with pytest.raises(VAEUnavailableError, match='holds no diffusers model.*unset \\$EDM_BDIA_VAE_DIR'):
        StabilityVAEEncoder().init('cpu', vae_dir=tmp_path / 'empty')
    with pytest.raises(VAEUnavailableError, match='not a Hugging Face Hub id'):
        StabilityVAEEncoder(vae_name='/some/local/path').init('cpu')


def test_missing_diffusers_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, 'diffusers', None)  # import diffusers now fails
    monkeypatch.setitem(sys.modules, 'diffusers.models', None)
    with pytest.raises(VAEUnavailableError, match=r'pip install -e "\.\[latent\]"'):
        StabilityVAEEncoder().decode(torch.zeros(1, 4, 8, 8))


def test_img64_needs_no_vae(monkeypatch):
    monkeypatch.setitem(sys.modules, 'diffusers', None)
    encoder = StandardRGBEncoder()
    encoder.init('cpu', vae_dir='/nowhere')  # the same call as for the VAE encoder; nothing to load
    assert math.isclose(encoder.encode(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)).max().item(), 1.0)
