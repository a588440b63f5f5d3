"""The built-in digits UNet `digits-16x16-cond` (benchmarks/train_digits_unet.py): the shipped file and its hash,
safe and NVlabs-style trusted loading, images sampled from it against golden PNG hashes, and an exact invert / edit
round trip through the command line."""

import hashlib
import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import edm_bdia
from edm_bdia import checkpoints
from edm_bdia.checkpoints import resolve_checkpoint
from edm_bdia.checkpoints.presets import PRESETS
from edm_bdia.checkpoints.unpickle import PickleLoadError
from edm_bdia.cli.main import main
from edm_bdia.networks import EDMPrecond, SongUNet
from helpers.generate import REPO_DIR
from helpers.persistence import run_python

NAME = 'digits-16x16-cond'
SHA256 = '951d9b6825669d669ed344bc736000033e58c31fbe13fc84c6e0b119467a55f2'
# Seeds 0-3, class 7, EDM's Heun sampler (18 steps), --speed reference on tiles of 4 samples, made on an AMD EPYC
# Zen 5 (family 26; AVX-512, avx512_bf16) with torch 2.13.0. With ATen and oneDNN capped to AVX2 the float images
# differ by up to 1.5e-4 of a grey level, while every pixel lies at least 1.2e-3 of a level from a rounding
# boundary, so the PNG bytes are the same: the hashes hold on CPUs whose kernels round differently by that much.
GOLDEN_PNG_SHA256 = {
    '000000.png': '0ea8679432fe0516c0903b7ace4e4681c064dddc8ca2ca99bec56a7d27fd0aa1',
    '000001.png': '8a8d24f3bc9cf366af6fdc8c379334d97aeb8e59f0a7120da7deface5de206a7',
    '000002.png': 'd59f7b34d7fd795c40e28c0bc1bb699e28107dacaf277abe11ceda8538d75e7a',
    '000003.png': '7a824eaf8d7d085bbbd607ca2e163d4cb1a59e733e1fc5a7a11cdbc50fff1329',
}


def cli(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def sha256_of(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_the_shipped_file_is_in_the_package_with_the_recorded_hash():
    preset = PRESETS[NAME]
    path = preset.packaged_path()
    assert os.path.dirname(path) == os.path.dirname(checkpoints.__file__)  # inside the installed package
    assert preset.url is None and not preset.builtin and preset.sha256 == SHA256
    assert sha256_of(path) == SHA256 and os.path.getsize(path) < 8 * 2 ** 20
    assert resolve_checkpoint(NAME).path == path  # no download: the name resolves to the packaged file


def test_safe_load_gives_our_ddpmpp_unet_in_float32():
    data = edm_bdia.load_pickle(NAME)
    assert set(data) == {'ema', 'loss_fn', 'augment_pipe', 'dataset_kwargs'}
    assert data['dataset_kwargs']['resolution'] == 16
    net = edm_bdia.load_network(NAME)
    assert type(net) is EDMPrecond and type(net.model) is SongUNet
    assert (net.img_resolution, net.img_channels, net.label_dim, net.sigma_data) == (16, 1, 10, 0.5)
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in net.parameters())
    assert 1_000_000 < sum(p.numel() for p in net.parameters()) < 2_000_000
    assert not net.training


def test_a_changed_shipped_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / 'copy.pkl'
    shutil.copy(PRESETS[NAME].packaged_path(), copy)
    with open(copy, 'ab') as file:
        file.write(b'\0')  # bytes after the pickle: it still unpickles, but it is not the shipped file
    monkeypatch.setattr(PRESETS[NAME].__class__, 'packaged_path', lambda self: str(copy))
    with pytest.raises(PickleLoadError, match='reinstall'):
        edm_bdia.load_network(NAME)


def test_nvlabs_style_trusted_loading_computes_what_the_safe_load_computes(tmp_path, one_thread):
    """A fresh process, with this repository's torch_utils first on sys.path, runs plain pickle.load as NVlabs'
    code does (the embedded sources execute); its denoiser output equals the safe load's, bit for bit (both on one
    thread: the subprocess runs with OMP_NUM_THREADS=1, and the thread count changes the convolutions' last bits)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 16, 16, generator=generator)
    sigma = torch.tensor([0.05, 1.0, 20.0])
    labels = torch.eye(10)[[1, 5, 9]]
    torch.save(dict(x=x, sigma=sigma, labels=labels), tmp_path / 'inputs.pt')
    run_python('import pickle, sys, torch\n'
               'data = pickle.load(open(sys.argv[1], "rb"))\n'
               'net = data["ema"].eval()\n'
               'inputs = torch.load(sys.argv[2])\n'
               'torch.save(net(inputs["x"], inputs["sigma"], inputs["labels"]), sys.argv[3])\n',
               args=(PRESETS[NAME].packaged_path(), tmp_path / 'inputs.pt', tmp_path / 'out.pt'),
               pythonpath=(REPO_DIR,))
    trusted = torch.load(tmp_path / 'out.pt')
    with torch.no_grad():
        safe = edm_bdia.load_network(NAME)(x, sigma, labels)
    assert torch.equal(trusted, safe)


@pytest.fixture(scope='module')
def sevens(tmp_path_factory):
    """Seeds 0-3 of class 7 with EDM's sampler, reference arithmetic on fixed tiles of 4."""
    folder = tmp_path_factory.mktemp('digits') / 'sevens'
    cli('generate', '--network', NAME, '--outdir', folder, '--seeds', '0-3', '--class', 7, '--speed', 'reference',
        '--tile', 4)
    return folder


def test_sampled_images_match_the_golden_png_hashes(sevens):
    assert {name: sha256_of(sevens / name) for name in GOLDEN_PNG_SHA256} == GOLDEN_PNG_SHA256


def test_invert_and_edit_through_the_command_line_give_the_pngs_back(sevens):
    latents = sevens.parent / 'sevens.npz'
    cli('invert', '--network', NAME, '--images', sevens, '--class', 7, '--out', latents)
    cli('edit', '--network', NAME, '--latents', latents, '--outdir', sevens.parent / 'back')
    for name in GOLDEN_PNG_SHA256:
        assert (sevens.parent / 'back' / name).read_bytes() == (sevens / name).read_bytes()
    with np.load(latents, allow_pickle=False) as npz:
        noise = npz['latents']
    assert 0.5 < noise.std() < 1.5  # noise-like, as latents of the network's own images should be
    cli('edit', '--network', NAME, '--latents', latents, '--class', 1, '--outdir', sevens.parent / 'ones')
    assert all((sevens.parent / 'ones' / name).read_bytes() != (sevens / name).read_bytes()
               for name in GOLDEN_PNG_SHA256)
