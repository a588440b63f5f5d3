"""Runs with EDM2 snapshots that carry an encoder: generate_images.py decodes a latent model's samples through the
VAE (checked against diffusers' own decoder on an independent restatement of edm2's sampler), invert encodes real
images to the VAE's posterior mean and edit decodes them again (a round trip exact in latent space), and a missing
VAE is one error line before any work. A tiny random diffusers VAE (2x down-sampling) stands in for Stability's."""

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from edm_bdia import load_network
from edm_bdia.cli.generate_images import main as generate_images_main
from edm_bdia.cli.main import main
from edm_bdia.networks import Precond, StabilityVAEEncoder
from helpers.edm2_reference import formula_weights_
from helpers.edm2_snapshots import importable_dnnlib, write_edm2_snapshot
from helpers.generate import nvlabs_latents_and_label
from test_sample_guidance import restated_edm2

diffusers = pytest.importorskip('diffusers')

STEPS = 4
LATENT_NET = dict(img_resolution=8, img_channels=4, label_dim=10, model_channels=16, channel_mult=[1, 2],
                  num_blocks=1, attn_resolutions=[4], channels_per_head=16, logvar_channels=8)


@pytest.fixture(scope='module')
def tiny_vae(tmp_path_factory):
    """A random AutoencoderKL with 4 latent channels and 2x down-sampling, saved as a diffusers model folder."""
    torch.manual_seed(0)
    vae = diffusers.models.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D'),
        up_block_types=('UpDecoderBlock2D', 'UpDecoderBlock2D'), block_out_channels=(8, 16), latent_channels=4,
        norm_num_groups=4, sample_size=16, layers_per_block=1).eval()
    folder = tmp_path_factory.mktemp('tiny-vae')
    vae.save_pretrained(folder)
    return folder, vae


@pytest.fixture(scope='module')
def latent_snapshot(tmp_path_factory):
    """An img512-like snapshot in NVlabs' layout: a conditional 4-channel 8x8 EDM2 network and its VAE encoder."""
    directory = tmp_path_factory.mktemp('latent-snapshot')
    with importable_dnnlib(tmp_path_factory.mktemp('dnnlib')) as dnnlib:
        net = formula_weights_(Precond(**LATENT_NET)).eval()
        return write_edm2_snapshot(directory / 'latent.pkl', net, StabilityVAEEncoder(batch_size=4), dnnlib)


@pytest.fixture
def vae_dir(tiny_vae, monkeypatch, tmp_path):
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setenv('EDM_BDIA_VAE_DIR', str(tiny_vae[0]))
    return tiny_vae


def diffusers_decode(vae, encoder, latents):
    """Stability's decoding written with diffusers directly: undo the whitening, decode, clamp, truncate."""
    scale = torch.tensor(encoder.scale).reshape(1, 4, 1, 1)
    bias = torch.tensor(encoder.bias).reshape(1, 4, 1, 1)
    with torch.no_grad():
        pixels = vae.decode((latents.to(torch.float32) - bias) / scale).sample
    return (pixels.clamp(0, 1) * 255).to(torch.uint8)


def load_pngs(folder):
    return np.stack([np.asarray(PIL.Image.open(os.path.join(folder, name)))
                     for name in sorted(os.listdir(folder)) if name.endswith('.png')])


def test_generate_images_decodes_latents_through_the_vae(latent_snapshot, vae_dir, tmp_path):
    _, vae = vae_dir
    result = CliRunner().invoke(generate_images_main, ['--net', str(latent_snapshot), '--outdir', str(tmp_path),
                                                       '--seeds', '0-2', '--steps', str(STEPS)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    net = load_network(latent_snapshot)
    expected = []
    for seed in range(3):
        _, noise, label = nvlabs_latents_and_label(net, seed)
        with torch.no_grad():
            latents = restated_edm2(net, noise[None], torch.eye(10)[label][None], None, STEPS, 1, 0, None)
        expected.append(diffusers_decode(vae, StabilityVAEEncoder(), latents)[0].permute(1, 2, 0).numpy())
    images = load_pngs(tmp_path)
    assert images.shape == (3, 16, 16, 3)  # 8x8 latents, 2x up-sampling
    assert np.abs(images.astype(int) - np.stack(expected).astype(int)).max() <= 1  # VAE batches of 4 against 1


def test_invert_then_edit_round_trips_in_latent_space(latent_snapshot, vae_dir, tmp_path):
    """Edit without a class regenerates the inverted latents; the images that come back are the VAE's decoding of
    the posterior mean of the sources (the VAE itself is not invertible, the sampler is)."""
    _, vae = vae_dir
    sources = tmp_path / 'sources'
    sources.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    for index, image in enumerate(pixels):
        PIL.Image.fromarray(image).save(sources / f'{index}.png')
    latents = tmp_path / 'latents.npz'
    for args in (['invert', '--images', sources, '--class', 2, '--out', latents, '--steps', 6],
                 ['edit', '--latents', latents, '--outdir', tmp_path / 'back']):
        result = CliRunner().invoke(main, [str(arg) for arg in [*args, '--network', latent_snapshot]],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
    with np.load(latents) as npz:
        assert npz['x_start'].shape == (3, 4, 8, 8)
        recorded = json.loads(str(npz['settings']))['encoder']
    assert recorded == dict(name='StabilityVAEEncoder', vae='stabilityai/sd-vae-ft-mse')
    encoder = StabilityVAEEncoder()
    posterior = vae.encode(torch.as_tensor(pixels).permute(0, 3, 1, 2).float() / 255).latent_dist.mean
    mean = posterior * torch.tensor(encoder.scale).reshape(1, 4, 1, 1) + torch.tensor(encoder.bias).reshape(1, 4, 1, 1)
    expected = diffusers_decode(vae, encoder, mean.detach()).permute(0, 2, 3, 1).numpy()
    assert np.abs(load_pngs(tmp_path / 'back').astype(int) - expected.astype(int)).max() <= 1


def test_pngs_of_the_latent_size_are_refused_naming_the_pixel_size(latent_snapshot, vae_dir, tmp_path):
    sources = tmp_path / 'sources'
    sources.mkdir()
    PIL.Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(sources / '0.png')
    result = CliRunner().invoke(main, ['invert', '--network', str(latent_snapshot), '--images', str(sources),
                                       '--class', '1', '--out', str(tmp_path / 'l.npz')])
    assert result.exit_code != 0
    assert result.output.strip() == (f'Error: --images {sources} holds 8x8 images, but the network makes 16x16; '
                                     'resize them first')


def test_a_missing_vae_is_one_line_naming_the_network_before_any_work(latent_snapshot, monkeypatch, tmp_path):
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'empty-cache'))
    monkeypatch.delenv('EDM_BDIA_VAE_DIR', raising=False)
    result = CliRunner().invoke(generate_images_main, ['--net', str(latent_snapshot), '--outdir',
                                                       str(tmp_path / 'out'), '--seeds', '0-1', '--steps', '2'])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'Error: --net {latent_snapshot}: ') and '$EDM_BDIA_VAE_DIR' in lines[0] and '--vae' not in lines[0]
    assert not os.path.exists(tmp_path / 'out')
