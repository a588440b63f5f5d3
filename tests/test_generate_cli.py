"""The generate command in one process: NVlabs-identical PNGs, sampler routing, batch-size invariance, grid/npz,
resume and manifest, and one-line errors for bad input."""

import os
import pickle

import numpy as np
import pytest
import torch

from edm_bdia import sample
from edm_bdia.checkpoints import download
from edm_bdia.runs.manifest import MANIFEST_NAME
from edm_bdia.files.images import read_png
from edm_bdia.analytic import toy_mixture_32x32_cond
from helpers.generate import (edm_net_pickle, folder_bytes, killed_writer_temp_name, nvlabs_latents_and_label, nvlabs_png_bytes,
                                   nvlabs_reference_png, pngs, read_npz, run_cli, tiny_net_pickle)


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def cond_pkl(tmp_path_factory):
    return tiny_net_pickle(tmp_path_factory.mktemp('nets') / 'cond.pkl', label_dim=4, resolution=8)


@pytest.fixture(scope='module')
def edm_pkl(tmp_path_factory):
    return edm_net_pickle(tmp_path_factory.mktemp('nets') / 'edm.pkl')


@pytest.fixture(scope='module')
def uncond_gray_pkl(tmp_path_factory):
    return tiny_net_pickle(tmp_path_factory.mktemp('nets') / 'gray.pkl', channels=1, label_dim=0, resolution=8)


def load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)['ema']


def ok(args):
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    return result


def fails(args, *fragments):
    """The command exits non-zero with one 'Error: ...' line naming the problem, and no traceback."""
    result = run_cli(args)
    assert result.exit_code != 0
    error_lines = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(error_lines) == 1, result.output
    for fragment in fragments:
        assert fragment in error_lines[0], result.output
    assert 'Traceback' not in result.output
    return error_lines[0]


# ---- NVlabs compatibility -------------------------------------------------------------------------------------

SEEDS = [0, 1, 2, 3, 4, 2 ** 32 + 1]


@pytest.mark.parametrize('options, kwargs', [
    ([], {}),
    (['--S_churn', '10', '--S_min', '0.05', '--S_max', '5', '--S_noise', '1.003'],
     dict(S_churn=10, S_min=0.05, S_max=5, S_noise=1.003)),
    (['--class', '2', '--sigma_max', '20', '--rho', '5'], dict(class_idx=2, sigma_max=20, rho=5)),
])
def test_pngs_equal_an_independent_nvlabs_restatement(tmp_path, cond_pkl, options, kwargs):
    ok(['--network', cond_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '0-4,4294967297',
        '--steps', 5, '--batch', 4, *options])
    net = load(cond_pkl)
    for seed in SEEDS:
        expected = nvlabs_reference_png(net, seed, 5, **kwargs)
        with open(tmp_path / f'{seed:06d}.png', 'rb') as f:
            assert f.read() == expected, seed
    # seeds alias modulo 2^32 (NVlabs): seed 2^32 + 1 is seed 1
    assert (tmp_path / '4294967297.png').read_bytes() == (tmp_path / '000001.png').read_bytes()


@pytest.mark.parametrize('options, kwargs', [([], {}), (['--S_churn', '40'], dict(S_churn=40))])
def test_real_edm_network_pngs_equal_restatement(tmp_path, edm_pkl, options, kwargs):
    ok(['--network', edm_pkl, '--outdir', tmp_path, '--seeds', '0-2', '--steps', 3, *options])  # safe loading
    net = load(edm_pkl)
    for seed in range(3):
        assert (tmp_path / f'{seed:06d}.png').read_bytes() == nvlabs_reference_png(net, seed, 3, **kwargs)


def test_builtin_default_network_matches_restatement(tmp_path):
    ok(['--outdir', tmp_path, '--seeds', '3,7', '--steps', 3])
    net = toy_mixture_32x32_cond()
    for seed in (3, 7):
        assert (tmp_path / f'{seed:06d}.png').read_bytes() == nvlabs_reference_png(net, seed, 3)


def test_grayscale_png_and_subdirs(tmp_path, uncond_gray_pkl):
    ok(['--network', uncond_gray_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '999-1001',
        '--steps', 3, '--subdirs'])
    net = load(uncond_gray_pkl)
    assert sorted(pngs(tmp_path)) == [os.path.join('000000', '000999.png'), os.path.join('001000', '001000.png'),
                                      os.path.join('001000', '001001.png')]
    assert (tmp_path / '001000' / '001001.png').read_bytes() == nvlabs_reference_png(net, 1001, 3)


# ---- sampler routing ------------------------------------------------------------------------------------------

def _direct(net, seeds, sampler, **kwargs):
    """PNG bytes of `sampler` called directly on each seed's NVlabs inputs (batch of one)."""
    out = {}
    for seed in seeds:
        generator, latents, label = nvlabs_latents_and_label(net, seed)
        labels = torch.eye(net.label_dim)[label][None]
        if sampler is sample.ablation_sampler:
            kwargs['randn_like'] = lambda x: torch.randn(x.shape[1:], dtype=x.dtype, generator=generator)[None]
        with torch.no_grad():
            out[seed] = nvlabs_png_bytes(sampler(net, latents[None], labels, **kwargs))
    return out


@pytest.mark.parametrize('options, sampler, kwargs', [
    (['--gamma', '0.5'], sample.bdia_sampler, dict(gamma=0.5, base='heun')),
    (['--gamma', 'obelm'], sample.bdia_sampler, dict(gamma='obelm', base='euler')),
    (['--gamma', '1', '--bdia-base', 'euler'], sample.bdia_sampler, dict(gamma=1.0, base='euler')),
    (['--solver', 'euler', '--disc', 'vp', '--schedule', 'vp', '--scaling', 'vp', '--S_churn', '5'],
     sample.ablation_sampler, dict(solver='euler', discretization='vp', schedule='vp', scaling='vp', S_churn=5)),
])
def test_routing_to_bdia_and_ablation(tmp_path, cond_pkl, options, sampler, kwargs):
    ok(['--network', cond_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '0-2', '--steps', 4,
        *options])
    expected = _direct(load(cond_pkl), [0, 1, 2], sampler, num_steps=4, **kwargs)
    for seed, data in expected.items():
        assert (tmp_path / f'{seed:06d}.png').read_bytes() == data


def test_bdia_differs_from_edm(tmp_path, cond_pkl):
    common = ['--network', cond_pkl, '--trust-pickle-code', '--seeds', '0-3', '--steps', 6]
    ok([*common, '--outdir', tmp_path / 'edm'])
    ok([*common, '--outdir', tmp_path / 'bdia', '--gamma', '1'])
    assert pngs(tmp_path / 'edm') != pngs(tmp_path / 'bdia')


# ---- speed modes -------------------------------------------------------------------------------------------------

def test_fast_speed_mode_is_batch_invariant_and_close_to_reference(tmp_path, edm_pkl):
    """--speed fast calls the network on fixed-size padded tiles: images do not depend on --batch, and differ
    from the reference arithmetic by at most one level (NHWC kernels round differently, ~6e-6 in D)."""
    runs = {}
    for batch in (3, 8):
        outdir = tmp_path / f'fast{batch}'
        ok(['--network', edm_pkl, '--outdir', outdir, '--seeds', '0-9', '--steps', 3, '--batch', batch,
            '--speed', 'fast', '--tile', 4])
        runs[batch] = folder_bytes(outdir)
    assert runs[3] == runs[8]
    ok(['--network', edm_pkl, '--outdir', tmp_path / 'ref', '--seeds', '0-9', '--steps', 3])
    for seed in range(10):
        fast = read_png(str(tmp_path / 'fast8' / f'{seed:06d}.png')).astype(int)
        ref = read_png(str(tmp_path / 'ref' / f'{seed:06d}.png')).astype(int)
        assert np.abs(fast - ref).max() <= 1
    fails(['--network', edm_pkl, '--outdir', tmp_path / 'ref', '--seeds', '0-9', '--steps', 3, '--resume',
           '--speed', 'fast'], 'different settings')


def test_mostly_padded_calls_are_announced_with_the_tile_that_avoids_them(tmp_path, edm_pkl):
    common = ['--network', edm_pkl, '--seeds', '0-2', '--steps', 2]
    note = [line for line in ok([*common, '--outdir', tmp_path / 'a']).output.splitlines() if line.startswith('Note')]
    assert len(note) == 1 and note[0].startswith('Note: up to 62% of the samples') and '--tile=3 pads none' in note[0]
    assert 'Note' not in ok([*common, '--outdir', tmp_path / 'b', '--tile', 3]).output


# ---- batch-size invariance, grid and npz ------------------------------------------------------------------------

def test_batch_size_invariance_and_collections(tmp_path, edm_pkl):
    runs = {}
    for batch in (1, 7, 64):
        outdir = tmp_path / f'b{batch}'
        ok(['--network', edm_pkl, '--outdir', outdir, '--seeds', '0-9',
            '--steps', 3, '--batch', batch, '--S_churn', 5, '--grid', outdir / 'grid.png',
            '--npz', outdir / 'all.npz'])
        runs[batch] = folder_bytes(outdir)
    assert runs[1] == runs[7] == runs[64]  # PNGs, manifest, grid and npz byte-identical

    outdir = tmp_path / 'b7'
    stacked = np.stack([read_png(str(outdir / f'{seed:06d}.png')) for seed in range(10)])
    archive = read_npz(outdir / 'all.npz')
    np.testing.assert_array_equal(archive['arr_0'], stacked)
    assert archive['arr_0'].shape == (10, 16, 16, 3) and archive['arr_0'].dtype == np.uint8
    net = load(edm_pkl)
    assert archive['arr_1'].tolist() == [int(nvlabs_latents_and_label(net, seed)[2]) for seed in range(10)]
    grid = read_png(str(outdir / 'grid.png'))  # 10 images -> 4 columns x 3 rows of 16x16
    assert grid.shape == (48, 64, 3)
    for seed in range(10):
        row, col = divmod(seed, 4)
        np.testing.assert_array_equal(grid[row * 16:(row + 1) * 16, col * 16:(col + 1) * 16], stacked[seed])


def test_npz_labels_follow_class_option(tmp_path, cond_pkl):
    ok(['--network', cond_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '0-5', '--steps', 2,
        '--class', 3, '--npz', tmp_path / 'a.npz'])
    assert read_npz(tmp_path / 'a.npz')['arr_1'].tolist() == [3] * 6


def test_npz_of_unconditional_net_has_no_labels(tmp_path, uncond_gray_pkl):
    ok(['--network', uncond_gray_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '0-2', '--steps', 2,
        '--npz', tmp_path / 'a.npz'])
    archive = read_npz(tmp_path / 'a.npz')
    assert sorted(archive) == ['arr_0'] and archive['arr_0'].shape == (3, 8, 8, 1)


# ---- resume and manifest ----------------------------------------------------------------------------------------

def test_resume_fills_in_missing_images_only(tmp_path, cond_pkl):
    args = ['--network', cond_pkl, '--trust-pickle-code', '--seeds', '0-9', '--steps', 3, '--batch', 4]
    ok([*args, '--outdir', tmp_path / 'full'])
    partial = tmp_path / 'partial'
    ok([*args, '--outdir', partial])
    for seed in (0, 5, 6, 9):
        os.remove(partial / f'{seed:06d}.png')
    (partial / '000001.png').write_bytes(b'kept as is')  # existing files are not touched by --resume
    (partial / killed_writer_temp_name('000002.png')).write_bytes(b'stale temp file of a killed run')
    ok([*args, '--outdir', partial, '--resume', '--batch', 3])
    expected = folder_bytes(tmp_path / 'full')
    expected['000001.png'] = b'kept as is'
    assert folder_bytes(partial) == expected


def test_rerun_with_other_settings_is_refused(tmp_path, cond_pkl):
    args = ['--network', cond_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '0-1']
    ok([*args, '--steps', 3])
    before = folder_bytes(tmp_path)
    fails([*args, '--steps', 4, '--resume'], 'different settings', 'num_steps')
    fails([*args, '--steps', 3, '--gamma', '0.5'], 'different settings', 'sampler')
    fails([*args, '--steps', 3, '--class', '1'], 'different settings', 'class_idx')
    assert folder_bytes(tmp_path) == before  # nothing was overwritten
    ok([*args, '--steps', 3, '--resume', '--seeds', '0-3'])  # same settings: more seeds are fine
    assert len(pngs(tmp_path)) == 4


def test_resume_into_folder_without_manifest_is_refused(tmp_path, cond_pkl):
    (tmp_path / '000000.png').write_bytes(b'from some other tool')
    fails(['--network', cond_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--resume'], MANIFEST_NAME)


def test_manifest_records_network_hash_and_settings(tmp_path, cond_pkl):
    import hashlib
    import json
    ok(['--network', cond_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--seeds', '0', '--steps', 2,
        '--gamma', 'obelm'])
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest['network'] == dict(source=cond_pkl, sha256=hashlib.sha256(open(cond_pkl, 'rb').read())
                                       .hexdigest())
    assert manifest['sampler'] == 'bdia_sampler'
    assert manifest['sampler_kwargs'] == dict(num_steps=2, rho=7.0, gamma='obelm', base='euler')
    assert manifest['device_type'] == 'cpu' and manifest['edm_bdia_version']


# ---- bad input ----------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def two_channel_pkl(tmp_path_factory):
    return tiny_net_pickle(tmp_path_factory.mktemp('nets') / 'two.pkl', channels=2, resolution=8)


@pytest.mark.parametrize('args, fragments', [
    (['--seeds', '5-3'], ['--seeds', 'reversed', '3-5']),
    (['--seeds', ''], ['--seeds', 'no seeds']),
    (['--seeds', '1,a'], ['--seeds', '"a"']),
    (['--steps', '1'], ['--steps', '1']),
    (['--gamma', '1.5'], ['--gamma', 'outside [0, 1]']),
    (['--gamma', 'fast'], ['--gamma', 'obelm']),
    (['--gamma', '0.5', '--S_churn', '1'], ['--S_churn', 'BDIA']),
    (['--gamma', '0.5', '--solver', 'euler'], ['--gamma', '--solver']),
    (['--class', '10'], ['--class is 10', '10 classes']),
    (['--class', '-1'], ['--class']),
    (['--network', 'no/such/file.pkl'], ['--network no/such/file.pkl', 'no such file']),
    (['--network', 'edm-cifar10-32x32-cond'], ['--network', 'preset']),
    (['--speed', 'fp16', '--device', 'cpu'], ['--speed fp16', 'CUDA']),
    (['--speed', 'reference', '--compile'], ['--speed reference', '--compile', '--speed fast']),
    (['--speed', 'fast', '--cuda-graphs', '--device', 'cpu'], ['--cuda-graphs', 'CUDA']),
])
def test_bad_input_gives_one_line_error(tmp_path, args, fragments):
    fails(['--outdir', tmp_path / 'out', '--steps', 2, *args], *fragments)
    assert not (tmp_path / 'out').exists() or not pngs(tmp_path / 'out')


def test_class_on_unconditional_net(tmp_path, uncond_gray_pkl):
    fails(['--network', uncond_gray_pkl, '--trust-pickle-code', '--outdir', tmp_path, '--class', 0],
          '--class is 0', 'unconditional')


def test_other_channel_counts_are_refused(tmp_path, two_channel_pkl):
    fails(['--network', two_channel_pkl, '--trust-pickle-code', '--outdir', tmp_path], '2-channel', '1', '3')


def test_untrusted_pickle_needs_flag(tmp_path, cond_pkl):
    fails(['--network', cond_pkl, '--outdir', tmp_path], '--trust-pickle-code')


def test_unwritable_outdir(tmp_path):
    (tmp_path / 'file').write_bytes(b'')
    fails(['--outdir', tmp_path / 'file' / 'out', '--steps', 2], '--outdir', 'not writable')


def test_unreachable_network_url(tmp_path, monkeypatch):
    monkeypatch.setattr(download, 'RETRY_BASE_DELAY_S', 0.0)
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path / 'cache'))
    fails(['--network', 'http://127.0.0.1:9/net.pkl', '--outdir', tmp_path / 'out'], '--network',
          'cannot reach 127.0.0.1:9')
