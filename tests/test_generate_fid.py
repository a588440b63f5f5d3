"""--fid-ref: FID streamed from the sampler equals FID computed from the written PNGs (stand-in detector)."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

from edm_bdia.cli import fid as fid_cli
from edm_bdia.fid.detector import load_detector
from edm_bdia.fid.frechet import frechet_distance
from edm_bdia.fid.refs import load_reference, save_reference
from edm_bdia.fid.stats import FeatureStats
from edm_bdia.generation.collections import read_images
from edm_bdia.distributed import all_batches
from helpers.fid import random_images, save_torchscript, tiny_inception
from helpers.generate import edm_net_pickle, folder_bytes, pngs, run_cli

pytestmark = pytest.mark.usefixtures('one_thread')

SEEDS = list(range(12))
GENERATE = ['--seeds', '0-11', '--steps', 2, '--batch', 5]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny EDM network, a reduced-width Inception stand-in (TorchScript) and reference statistics."""
    folder = tmp_path_factory.mktemp('fid')
    detector = str(save_torchscript(tiny_inception(seed=0), folder / 'detector.pt'))
    stats = FeatureStats(64)
    with torch.no_grad():
        stats.update(load_detector(detector)(random_images(20, size=16), return_features=True))
    reference = save_reference(str(folder / 'ref.npz'), *stats.mean_cov())
    return dict(net=edm_net_pickle(folder / 'edm.pkl'), detector=detector, ref=reference)


def _fid_args(files):
    return ['--network', files['net'], '--fid-ref', files['ref'], '--detector', files['detector']]


def _printed_fid(result):
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def _fid_of_pngs(files, outdir):
    """Read the PNGs back and compute FID the same way: same detector, the generate batches, float64 sums."""
    detector = load_detector(files['detector'])
    stats = FeatureStats(64)
    for batch in all_batches(SEEDS, 5, 1):
        images = torch.as_tensor(read_images(str(outdir), batch, False)).permute(0, 3, 1, 2)
        with torch.no_grad():
            stats.update(detector(images, return_features=True))
    return frechet_distance(*stats.mean_cov(), *load_reference(files['ref']))


def test_streaming_fid_equals_fid_of_written_pngs(tmp_path, files, monkeypatch):
    monkeypatch.chdir(tmp_path)
    streamed = _printed_fid(run_cli([*_fid_args(files), *GENERATE]))
    assert os.listdir(tmp_path) == []  # no --outdir: nothing written

    ok = run_cli(['--network', files['net'], '--outdir', tmp_path / 'pngs', *GENERATE])
    assert ok.exit_code == 0, ok.output
    expected = _fid_of_pngs(files, tmp_path / 'pngs')
    assert streamed == f'{expected:g}' and expected > 0

    both = run_cli([*_fid_args(files), '--outdir', tmp_path / 'both', *GENERATE])
    assert _printed_fid(both) == streamed
    assert pngs(tmp_path / 'both') == pngs(tmp_path / 'pngs')

    calc = CliRunner().invoke(fid_cli.main, ['calc', '--images', str(tmp_path / 'pngs'), '--ref', files['ref'],
                                             '--detector', files['detector'], '--num', '12', '--workers', '0',
                                             '--device', 'cpu', '--json'])
    assert calc.exit_code == 0, calc.output
    from_fid_tool = json.loads(calc.stdout.strip().splitlines()[-1])['fid']
    assert from_fid_tool == pytest.approx(expected, rel=1e-6)  # its own batching: float32 detector rounding only


def test_resumed_run_streams_the_same_fid(tmp_path, files):
    outdir = tmp_path / 'out'
    first = _printed_fid(run_cli([*_fid_args(files), '--outdir', outdir, *GENERATE]))
    complete = folder_bytes(outdir)
    for seed in (0, 1, 2, 3, 4, 7):  # batches [0-3], [4-7] are sampled again, [8-11] is read back from disk
        os.remove(outdir / f'{seed:06d}.png')
    resumed = _printed_fid(run_cli([*_fid_args(files), '--outdir', outdir, *GENERATE, '--resume']))
    assert resumed == first and folder_bytes(outdir) == complete


@pytest.mark.parametrize('args, fragment', [
    (['--fid-ref', 'no-such-ref.npz', '--detector', 'DET'], '--fid-ref no-such-ref.npz: no such file'),
    (['--fid-ref', 'REF', '--seeds', '3'], 'at least 2 seeds'),
    (['--fid-ref', 'REF', '--detector', 'missing.pt'], 'missing.pt'),
    (['--detector', 'DET', '--outdir', 'out'], '--detector is only used with --fid-ref'),
    ([], '--outdir'),
    (['--fid-ref', 'REF', '--grid', 'g.png'], '--grid'),
])
def test_fid_option_errors(tmp_path, files, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    args = [{'REF': files['ref'], 'DET': files['detector']}.get(arg, arg) for arg in args]
    result = run_cli(['--network', files['net'], '--steps', 2, *args])
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert 'Traceback' not in result.output and not pngs(tmp_path)
