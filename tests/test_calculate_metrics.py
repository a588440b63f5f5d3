"""calculate_metrics.py calc / ref / gen end to end on stand-in detectors: NVlabs' output lines, EDM2 statistics
files, `gen` (plain and guided) equal to generating PNGs with edm2's generate_images.py and measuring them; fid.py and generate.py --fid-ref
with --metrics; every bad input as one `Error:` line before feature extraction starts."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edm_bdia.checkpoints.download import cache_path
from edm_bdia.cli import calculate_metrics, fid as fid_cli, generate_images
from edm_bdia.fid import refs
from edm_bdia.fid.dinov2_weights import DINOV2_FILE, DINOV2_URL
from helpers.fid import save_metric_detectors, save_random_pngs
from helpers.generate import edm_net_pickle, run_cli, subprocess_env

pytestmark = pytest.mark.usefixtures('one_thread')
NUM_IMAGES = 8
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('calculate_metrics')
    save_random_pngs(folder / 'images', NUM_IMAGES)
    detectors = save_metric_detectors(folder)
    options = ['--detector', detectors['detector'], '--dinov2', detectors['dinov2'], '--device=cpu']
    result = _invoke(calculate_metrics.main, 'ref', '--data', folder / 'images', '--dest', folder / 'ref.pkl',
                     '--workers=0', *options)
    assert result.exit_code == 0, result.output
    return dict(folder=folder, images=str(folder / 'images'), ref=str(folder / 'ref.pkl'), options=options,
                ref_output=result.stdout, **detectors)


def _invoke(command, *args):
    return CliRunner().invoke(command, [str(arg) for arg in args])


def _calc(files, *args, images=None, ref=None):
    return _invoke(calculate_metrics.main, 'calc', '--images', images or files['images'], '--ref', ref or files['ref'],
                   f'--num={NUM_IMAGES}', '--workers=0', *files['options'], *args)


def _values(stdout):
    """{metric: value} from NVlabs' result lines `metric = value`."""
    return {line.split(' = ')[0]: float(line.split(' = ')[1]) for line in stdout.splitlines() if ' = ' in line}


def test_ref_prints_nvlabs_lines_and_writes_edm2_statistics(files):
    assert files['ref_output'].splitlines() == [
        f'Loading images from {files["images"]} ...', 'Setting up InceptionV3Detector...',
        'Setting up DINOv2Detector...', 'Calculating feature statistics...']
    with open(files['ref'], 'rb') as file:
        stats = pickle.load(file)
    assert stats['num_images'] == NUM_IMAGES and sorted(stats) == ['fd_dinov2', 'fid', 'num_images']
    assert stats['fid']['mu'].shape == (64,) and stats['fd_dinov2']['sigma'].shape == (128, 128)


def test_calc_prints_nvlabs_lines_and_is_zero_against_its_own_reference(files):
    result = _calc(files)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:5] == [f'Loading feature statistics from {files["ref"]} ...',
                         f'Loading images from {files["images"]} ...', 'Setting up InceptionV3Detector...',
                         'Setting up DINOv2Detector...', 'Calculating feature statistics...']
    assert [line.split(' = ')[0] for line in lines[5:]] == ['Calculating fid...', 'fid', 'Calculating fd_dinov2...',
                                                             'fd_dinov2']
    values = _values(result.stdout)
    assert abs(values['fid']) < 1e-9 and abs(values['fd_dinov2']) < 1e-9


def test_calc_of_other_images_matches_the_library_distance(files, tmp_path):
    save_random_pngs(tmp_path / 'other', NUM_IMAGES, seed=5)
    result = _calc(files, '--metrics=fd_dinov2', images=tmp_path / 'other')
    assert result.exit_code == 0, result.output
    values = _values(result.stdout)
    assert list(values) == ['fd_dinov2'] and values['fd_dinov2'] > 0.1
    assert 'Setting up InceptionV3Detector...' not in result.stdout  # only the detectors asked for


def test_fid_py_computes_both_metrics_in_one_pass(files, tmp_path):
    args = ['--workers=0', '--metrics=fid,fd_dinov2', *files['options']]
    result = _invoke(fid_cli.main, 'ref', '--data', files['images'], '--dest', tmp_path / 'both.pkl', *args)
    assert result.exit_code == 0, result.output
    result = _invoke(fid_cli.main, 'calc', '--images', files['images'], '--ref', tmp_path / 'both.pkl',
                     f'--num={NUM_IMAGES}', *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # stdout holds the results only
    assert [line.split(' = ')[0] for line in lines] == ['fid', 'fd_dinov2']
    assert max(map(abs, _values(result.stdout).values())) < 1e-9
    result = _invoke(fid_cli.main, 'calc', '--images', files['images'], '--ref', files['ref'], f'--num={NUM_IMAGES}',
                     '--metrics=fd_dinov2', '--workers=0', *files['options'])
    assert result.exit_code == 0 and abs(float(result.stdout.strip())) < 1e-9, result.output  # one metric: bare


@pytest.mark.parametrize('guidance', [[], ['--gnet', 'GNET', '--guidance', '1.5']], ids=['plain', 'guided'])
def test_gen_equals_measuring_the_pngs_of_edm2s_generate_images(files, tmp_path, guidance):
    net = edm_net_pickle(tmp_path / 'edm.pkl')
    guidance = [edm_net_pickle(tmp_path / 'gnet.pkl', seed=1) if arg == 'GNET' else arg for arg in guidance]
    result = _invoke(calculate_metrics.main, 'gen', '--net', net, '--ref', files['ref'], '--num=4', '--seed=5',
                     '--batch=2', *guidance, *files['options'])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f'Loading feature statistics from {files["ref"]} ...'
    streamed = _values(result.stdout)
    written = _invoke(generate_images.main, '--net', net, '--outdir', tmp_path / 'out', '--seeds', '5-8', '--batch',
                      2, '--device', 'cpu', *guidance)
    assert written.exit_code == 0, written.output
    measured = _calc(files, '--num=4', '--batch=2', images=tmp_path / 'out')
    assert measured.exit_code == 0, measured.output
    for metric, value in _values(measured.stdout).items():
        assert streamed[metric] == pytest.approx(value, rel=1e-6), metric


def test_generate_streams_both_metrics_like_writing_the_pngs(files, tmp_path):
    net = edm_net_pickle(tmp_path / 'edm.pkl')
    result = run_cli(['--network', net, '--outdir', tmp_path / 'out', '--seeds', '0-3', '--steps', 2, '--batch', 2,
                      '--device', 'cpu', '--fid-ref', files['ref'], '--metrics', 'fid,fd_dinov2',
                      '--detector', files['detector'], '--dinov2', files['dinov2']])
    assert result.exit_code == 0, result.output
    streamed = _values('\n'.join(result.stdout.splitlines()[-2:]))
    measured = _calc(files, '--num=4', '--batch=2', images=tmp_path / 'out')
    assert measured.exit_code == 0, measured.output
    assert list(streamed) == ['fid', 'fd_dinov2']
    for metric, value in _values(measured.stdout).items():
        assert streamed[metric] == pytest.approx(value, rel=1e-6), metric


def _bad_inputs(files, folder):
    """name -> (the calc options that differ from a good run, the start of the expected error line)."""
    data = open(files['dinov2'], 'rb').read()
    (folder / 'truncated.pth').write_bytes(data[:len(data) // 3])
    fid_only = refs.save_statistics_pickle(str(folder / 'fid_only.pkl'), refs.load_references(files['ref']), 8)
    npz = refs.save_reference(str(folder / 'edm.npz'), *refs.load_reference(files['ref']))
    truncated = str(folder / 'truncated.pth')
    return {
        'truncated weights': ({'--dinov2': truncated},
                              f"Error: --dinov2 {truncated}: not a PyTorch weights file in torch.save's zip format"),
        'another model': ({'--dinov2': files['detector']},
                          f'Error: --dinov2 {files["detector"]}: a TorchScript module, not a state dict of DINOv2 '
                          "weights like Meta's file"),
        'pkl without the metric': ({'--ref': fid_only}, f"Error: --ref {fid_only}: the file has no 'fd_dinov2' "
                                                        'statistics (it has: fid); leave fd_dinov2 out of --metrics'),
        'npz with fd_dinov2': ({'--ref': npz},
                               f'Error: --ref {npz}: an EDM .npz holds FID (Inception) statistics only, none for '
                               'fd_dinov2'),
        'unknown metric': ({'--metrics': 'fid,is'}, 'Error: --metrics is: unknown metric; choose from fid, fd_dinov2'),
    }


def test_bad_inputs_give_one_error_line_before_extraction(files, tmp_path):
    good = {'--images': files['images'], '--ref': files['ref'], '--detector': files['detector'],
            '--dinov2': files['dinov2'], '--num': NUM_IMAGES, '--workers': 0, '--device': 'cpu'}
    for name, (changes, expected) in _bad_inputs(files, tmp_path).items():
        options = dict(good, **changes)
        result = _invoke(calculate_metrics.main, 'calc', *[part for item in options.items() for part in item])
        errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
        assert result.exit_code == 1 and len(errors) == 1 and errors[0].startswith(expected), (name, result.output)
        assert 'Calculating feature statistics...' not in result.output, name


def test_missing_dinov2_offline_names_the_file_and_where_to_put_it(files, tmp_path):
    """The real entry point in a fresh process, with empty caches and no network."""
    env = subprocess_env(EDM_BDIA_OFFLINE='1', EDM_BDIA_CACHE_DIR=str(tmp_path / 'cache'),
                         DNNLIB_CACHE_DIR=str(tmp_path / 'dnnlib'), TORCH_HOME=str(tmp_path / 'torch'))
    result = subprocess.run([sys.executable, os.path.join(REPO, 'calculate_metrics.py'), 'calc', '--images',
                             files['images'], '--ref', files['ref'], f'--num={NUM_IMAGES}', '--workers=0',
                             '--detector', files['detector'], '--device=cpu'],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    expected_place = str(tmp_path / 'cache' / os.path.basename(cache_path(DINOV2_URL)))
    assert len(errors) == 1 and DINOV2_FILE in errors[0] and expected_place in errors[0], result.stderr
    assert 'Traceback' not in result.stderr and 'Calculating feature statistics...' not in result.stdout


def test_two_gloo_ranks_equal_one_process(files, tmp_path):
    """`ref` under torchrun: each rank feeds both detectors its own batches; the sums meet in one all-reduce per
    metric and rank 0 alone prints and writes."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
               os.path.join(REPO, 'calculate_metrics.py'), 'ref', '--data', files['images'], '--dest',
               str(tmp_path / 'two.pkl'), '--batch=3', '--workers=0', *files['options']]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('Setting up DINOv2Detector...') == 1
    one, two = refs.load_references(files['ref'], ('fid', 'fd_dinov2')), refs.load_references(
        str(tmp_path / 'two.pkl'), ('fid', 'fd_dinov2'))
    for metric, (mu, sigma) in one.items():
        # Other batch compositions change float32 features by ~1e-7 relative, sigma by that much of E[f f^T].
        scale = np.abs(mu).max() ** 2 + np.abs(sigma).max()
        assert np.abs(two[metric][0] - mu).max() <= 1e-6 * np.abs(mu).max(), metric
        assert np.abs(two[metric][1] - sigma).max() <= 1e-6 * scale, metric
