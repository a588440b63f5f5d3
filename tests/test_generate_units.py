"""Unit tests of the generate engine's parts: seeds and batching, quantisation, image files, writer, network
adapter, noise skipping, manifest."""

import math
import os
import re
import subprocess
import sys
import threading
import warnings
from fractions import Fraction

import numpy as np
import PIL.Image
import pytest
import torch

from edm_bdia import files
from edm_bdia.checkpoints.hashing import sha256_state
from edm_bdia.files import images
from edm_bdia.distributed import batching
from edm_bdia.generation import seeds as seed_lists
from edm_bdia.generation.padding import padding_note, padding_share
from edm_bdia.generation.sampler import choose_sampler, noise_argument
from edm_bdia.runs import manifest
from edm_bdia.runs import writer as writer_module
from edm_bdia.runs.writer import ImageWriter
from edm_bdia.sample import ablation_sampler, bdia_sampler, edm_sampler
from edm_bdia.speed import apply_plan, make_plan, modes
from helpers.generate import killed_writer_temp_name
from helpers.nets import TinyNonlinearNet


# ---- seeds ----------------------------------------------------------------------------------------------------

def test_parse_seeds_keeps_nvlabs_semantics():
    assert seed_lists.parse_seeds('0-3') == [0, 1, 2, 3]
    assert seed_lists.parse_seeds('5,1-2,5') == [5, 1, 2, 5]  # order and duplicates kept
    assert seed_lists.parse_seeds('-3') == [-3]  # NVlabs accepts it (int('-3'))
    assert seed_lists.parse_seeds('4294967296') == [2 ** 32]


@pytest.mark.parametrize('text, fragment', [('5-3', 'reversed'), ('', 'no seeds'), (',', 'no seeds'),
                                            ('1,x', '"x"'), ('1-', '"1-"')])
def test_parse_seeds_rejects_bad_lists(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        seed_lists.parse_seeds(text)


@pytest.mark.parametrize('count, batch, world', [(10, 4, 2), (13, 2, 3), (3, 64, 4), (50000, 64, 8), (1, 1, 1),
                                                 (64, 7, 1), (129, 64, 2)])
def test_batches_follow_nvlabs_tensor_split(count, batch, world):
    seeds = list(range(100, 100 + count))
    num_batches = ((count - 1) // (batch * world) + 1) * world
    expected = [part.tolist() for part in torch.as_tensor(seeds).tensor_split(num_batches)]  # NVlabs' split
    assert batching.all_batches(seeds, batch, world) == expected
    for rank in range(world):
        assert list(batching.rank_batches(seeds, batch, rank, world)) == expected[rank::world]
    sizes = batching.batch_sizes(count, num_batches)
    assert sizes == {size: [len(part) for part in expected].count(size) for size in map(len, expected)}
    for tile in (1, 3, 8):  # padded samples counted call by call over NVlabs' batches
        called = sum(math.ceil(len(part) / tile) * tile for part in expected)
        assert padding_share(sizes, tile) == pytest.approx(1 - count / called, abs=1e-15)


def test_generate_says_how_to_avoid_mostly_padded_calls():
    as_options = {'tile': '--tile', 'max_batch_size': '--batch'}.get
    note = padding_note(8, 4, 64, 1)
    assert str(note).startswith('up to 50% of the samples in the network calls may be padding: calls hold tile=8')
    assert note.worded(as_options).startswith('up to 50% of the samples in the network calls may be padding: calls '
                                              'hold --tile=8 samples') and '--batch or' in note.worded(as_options)
    assert '--tile=4 pads none' in note.worded(as_options)
    assert '--tile=11 pads less' in padding_note(8, 21, 11, 1).worded(as_options)  # batches of 11, 10: 34%
    assert padding_note(8, 13, 64, 1) is None  # 16 samples called for 13: 19%, below the note's threshold
    assert padding_note(8, 64, 64, 8) is None and padding_note(None, 3, 64, 1) is None


def test_batches_examples_from_the_contract():
    seeds = list(range(13))
    assert list(batching.rank_batches(seeds, 2, 0, 3)) == [[0, 1], [6, 7], [10]]
    assert list(batching.rank_batches(seeds, 2, 1, 3)) == [[2, 3], [8], [11]]
    assert list(batching.rank_batches(list(range(3)), 64, 3, 4)) == [[]]


def test_image_path_naming():
    assert seed_lists.image_path('out', 7) == os.path.join('out', '000007.png')
    assert seed_lists.image_path('out', 12345, subdirs=True) == os.path.join('out', '012000', '012345.png')
    assert seed_lists.image_path('out', 4294967296, subdirs=True) == os.path.join('out', '4294967000',
                                                                                 '4294967296.png')


# ---- quantisation and files -----------------------------------------------------------------------------------

def test_to_uint8_matches_exact_floor_of_127_5_x_plus_128():
    # dyadic x with short mantissas, so 127.5 x + 128 is exact in float64 and comparable with exact arithmetic
    values = [-2.0, -1.0, -1 + 2 ** -8, -0.5, -2 ** -9, 0.0, 2 ** -10, 0.25 + 2 ** -7, 0.75, 1 - 2 ** -9, 1.0, 3.0]
    values += (np.random.RandomState(0).randint(-2 ** 20, 2 ** 20, size=200) / 2 ** 19).tolist()
    got = images.to_uint8(torch.tensor(values + [float('nan')], dtype=torch.float64)).tolist()
    expected = [min(max(math.floor(Fraction(255, 2) * Fraction(v) + 128), 0), 255) for v in values]
    assert got == expected + [0]  # NaN -> 0 on CPU, as in NVlabs
    assert got[:12] == [0, 0, 0, 64, 127, 128, 128, 160, 223, 255, 255, 255]


@pytest.mark.parametrize('channels, mode', [(1, 'L'), (3, 'RGB')])
def test_png_round_trip_and_mode(tmp_path, channels, mode):
    array = np.random.RandomState(0).randint(0, 256, size=(5, 7, channels), dtype=np.uint8)
    path = str(tmp_path / 'a.png')
    images.save_png(array, path)
    with PIL.Image.open(path) as image:
        assert image.mode == mode
    np.testing.assert_array_equal(images.read_png(path), array)
    assert os.listdir(tmp_path) == ['a.png']  # no temporary file left


def test_png_rejects_other_channel_counts(tmp_path):
    with pytest.raises(ValueError, match='1 or 3 channels'):
        images.save_png(np.zeros((4, 4, 2), np.uint8), str(tmp_path / 'a.png'))


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = str(tmp_path / 'x.bin')
    files.atomic_write(path, lambda f: f.write(b'old'))

    def failing(f):
        f.write(b'partial')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        files.atomic_write(path, failing)
    assert open(path, 'rb').read() == b'old'
    assert os.listdir(tmp_path) == ['x.bin']


def test_remove_stale_temp_files_removes_only_those_whose_writer_is_gone(tmp_path):
    """A killed writer's file goes; a live writer's (a second run racing on the folder) stays, as do files of
    another host until they are an hour old, and files that are not ours."""
    from edm_bdia.files import atomic
    (tmp_path / 'sub').mkdir()
    other_host = f'.png.0123abcd.{os.getpid()}.1{files.TEMP_SUFFIX}'
    stale = [tmp_path / killed_writer_temp_name('000001.png'), tmp_path / 'sub' / killed_writer_temp_name('a.png'),
             tmp_path / ('.old' + other_host)]
    keep = [tmp_path / '000001.png', tmp_path / '.hidden', tmp_path / f'x{files.TEMP_SUFFIX}',
            tmp_path / f'.c.png.{atomic._HOST}.{os.getpid()}.1{files.TEMP_SUFFIX}', tmp_path / ('.new' + other_host)]
    for path in stale + keep:
        path.write_bytes(b'1')
    hour_and_a_bit = files.atomic.STALE_AFTER_S + 60
    os.utime(stale[2], (os.path.getatime(stale[2]) - hour_and_a_bit,) * 2)
    files.remove_stale_temp_files(str(tmp_path))
    assert [path.exists() for path in stale + keep] == [False] * 3 + [True] * 5


def test_a_run_starting_on_a_folder_leaves_the_temporary_files_of_a_run_writing_there(tmp_path):
    """The race behind two runs on one folder both failing: the second run's clean-up removed the first run's
    half-written file before its rename."""
    from edm_bdia.runs.folder import check_outdir
    written = threading.Event()
    release = threading.Event()

    def slow_write(f):
        f.write(b'png')
        written.set()
        release.wait(10)
    writer = threading.Thread(target=files.atomic_write, args=(str(tmp_path / '000000.png'), slow_write))
    writer.start()
    assert written.wait(10)
    check_outdir(str(tmp_path))  # what a second run does first
    release.set()
    writer.join()
    assert (tmp_path / '000000.png').read_bytes() == b'png'


def test_grid_places_image_k_at_row_k_div_cols():
    tiles = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3, 3), np.uint8)
    grid = images.grid_array(tiles)  # 10 images -> 4 columns, 3 rows
    assert grid.shape == (3 * 2, 4 * 3, 3)
    for k in range(12):
        row, col = divmod(k, 4)
        cell = grid[row * 2:(row + 1) * 2, col * 3:(col + 1) * 3]
        assert (cell == (k if k < 10 else 0)).all()
    assert images.grid_array(np.zeros((100, 2, 2, 1), np.uint8)).shape == (16, 16, 1)  # first 64 only


def test_npz_openai_layout(tmp_path):
    arr = np.random.RandomState(1).randint(0, 256, size=(3, 4, 4, 3), dtype=np.uint8)
    images.save_npz(str(tmp_path / 'a.npz'), arr, [2, 0, 9])
    with np.load(tmp_path / 'a.npz') as data:
        assert data.files == ['arr_0', 'arr_1']
        np.testing.assert_array_equal(data['arr_0'], arr)
        assert data['arr_1'].dtype == np.int64 and data['arr_1'].tolist() == [2, 0, 9]


# ---- writer ---------------------------------------------------------------------------------------------------

def test_writer_writes_everything_on_worker_threads(tmp_path, monkeypatch):
    threads = []

    def recording_save_png(array, path):
        threads.append(threading.get_ident())
        images.save_png(array, path)

    monkeypatch.setattr(writer_module, 'save_png', recording_save_png)
    with ImageWriter(num_threads=2, max_pending=3) as writer:
        for k in range(10):
            writer.submit(np.full((2, 2, 3), k, np.uint8), str(tmp_path / f'{k}.png'))
    for k in range(10):
        assert (images.read_png(str(tmp_path / f'{k}.png')) == k).all()
    assert len(threads) == 10 and threading.get_ident() not in threads


def test_writer_reports_errors(tmp_path):
    (tmp_path / 'a-file').write_bytes(b'')
    writer = ImageWriter(num_threads=1)
    writer.submit(np.zeros((2, 2, 3), np.uint8), str(tmp_path / 'missing-folder' / 'a.png'))  # the folder is made
    writer.submit(np.zeros((2, 2, 3), np.uint8), str(tmp_path / 'a-file' / 'b.png'))  # a file where it must go
    with pytest.raises(OSError, match='cannot write an image to .*b.png .*a-file: File exists'):
        writer.close()
    assert (tmp_path / 'missing-folder' / 'a.png').exists()


# ---- network adapter and sampler routing ----------------------------------------------------------------------

def test_reference_plan_on_tiles_of_one_calls_the_net_one_sample_at_a_time():
    net = TinyNonlinearNet(label_dim=4, dtype=torch.float32)
    x = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    labels = torch.eye(4)[[0, 1, 2, 3, 0]]
    sigma = torch.tensor(2.5, dtype=torch.float64)
    plan = make_plan('reference', 'cpu', tile=1)
    assert make_plan('reference', 'cpu', batch_invariant=True).tile == modes.BATCH_INVARIANT_REFERENCE_TILE
    assert make_plan('reference', 'cpu').tile is None
    tiled = apply_plan(net, plan, 'cpu')
    assert tiled.label_dim == 4 and tiled.img_resolution == 8 and tiled.sigma_max == float('inf')
    expected = torch.cat([net(x[i:i + 1], sigma, labels[i:i + 1]) for i in range(5)])
    assert torch.equal(tiled(x, sigma, labels), expected)
    per_sample_sigma = torch.linspace(1, 3, 5, dtype=torch.float64)
    expected = torch.cat([net(x[i:i + 1], per_sample_sigma[i:i + 1], labels[i:i + 1]) for i in range(5)])
    assert torch.equal(tiled(x, per_sample_sigma, labels), expected)
    assert torch.equal(tiled.round_sigma(sigma), net.round_sigma(sigma))


def test_sampler_routing():
    base = dict(num_steps=4, sigma_min=None, sigma_max=1.5, rho=7, S_churn=0, S_min=0, S_max=float('inf'),
                S_noise=1)
    draws = lambda sampler_fn, kwargs: noise_argument(sampler_fn, kwargs, torch.randn_like)  # noqa: E731
    edm, edm_kwargs = choose_sampler(**base)
    assert edm is edm_sampler and 'sigma_min' not in edm_kwargs and edm_kwargs['sigma_max'] == 1.5
    assert draws(edm, edm_kwargs) == dict(randn_like=None)
    assert draws(*choose_sampler(**dict(base, S_churn=5))) == dict(randn_like=torch.randn_like)
    ablation, ablation_kwargs = choose_sampler(**base, solver='euler')
    assert ablation is ablation_sampler and ablation_kwargs['solver'] == 'euler'
    assert 'schedule' not in ablation_kwargs
    assert draws(ablation, ablation_kwargs) == dict(randn_like=torch.randn_like)  # sigma_inv(sigma(t)) != t
    bdia, bdia_kwargs = choose_sampler(**base, gamma=0.8)
    assert bdia is bdia_sampler and bdia_kwargs['gamma'] == 0.8 and bdia_kwargs['base'] == 'heun'
    assert 'S_churn' not in bdia_kwargs and draws(bdia, bdia_kwargs) == {}
    assert choose_sampler(**base, gamma='obelm')[1]['base'] == 'euler'
    assert choose_sampler(**base, gamma=0.0, bdia_base='euler')[1] == dict(
        num_steps=4, sigma_max=1.5, rho=7, gamma=0.0, base='euler')
    with pytest.raises(ValueError, match='S_churn must be 0 with BDIA'):
        choose_sampler(**dict(base, S_churn=1), gamma=0.5)
    with pytest.raises(ValueError, match='cannot be combined'):
        choose_sampler(**base, gamma=0.5, solver='euler')


# ---- manifest -------------------------------------------------------------------------------------------------

def _manifest(**changes):
    settings = dict(edm_bdia_version='1', network=dict(source='a.pkl', sha256='ab'), sampler='edm_sampler',
                    sampler_kwargs=dict(num_steps=4, S_max=float('inf')), class_idx=None, subdirs=False,
                    device_type='cpu', speed=dict(mode='reference', tile=None, channels_last=False))
    settings.update(changes)
    return manifest.jsonable(settings)


def test_manifest_claim_and_mismatch(tmp_path):
    outdir = str(tmp_path)
    manifest.claim_outdir(outdir, _manifest(), resume=False, has_images=False)
    written = manifest.read_manifest(outdir)
    assert written == _manifest() and written['sampler_kwargs']['S_max'] == 'inf'
    before = open(tmp_path / manifest.MANIFEST_NAME, 'rb').read()
    manifest.claim_outdir(outdir, _manifest(network=dict(source='./a.pkl', sha256='ab')), resume=True, has_images=True)
    assert open(tmp_path / manifest.MANIFEST_NAME, 'rb').read() == before  # spelling of the path is free
    for change in (dict(network=dict(source='a.pkl', sha256='cd')),
                   dict(sampler_kwargs=dict(num_steps=5, S_max=float('inf'))), dict(class_idx=3),
                   dict(edm_bdia_version='2'), dict(device_type='cuda'),
                   dict(speed=dict(mode='fast', tile=8, channels_last=True))):
        with pytest.raises(Exception, match='different settings'):
            manifest.claim_outdir(outdir, _manifest(**change), resume=True, has_images=True)


def test_manifest_refuses_resume_into_unknown_images(tmp_path):
    with pytest.raises(Exception, match='no edm_bdia_manifest.json'):
        manifest.claim_outdir(str(tmp_path), _manifest(), resume=True, has_images=True)
    manifest.claim_outdir(str(tmp_path), _manifest(), resume=True, has_images=False)  # fresh folder: fine


def test_state_hash_sees_every_weight():
    a, b = TinyNonlinearNet(seed=0), TinyNonlinearNet(seed=0)
    assert sha256_state(a) == sha256_state(b)
    w = b.weight.data[0, 0, 0, 0]
    b.weight.data[0, 0, 0, 0] = torch.nextafter(w, w + 1)  # one ulp
    assert sha256_state(a) != sha256_state(b)


# ---- library without the command line ---------------------------------------------------------------------------

LIBRARY_PACKAGES = ('edm_bdia.generation', 'edm_bdia.editing', 'edm_bdia.runs', 'edm_bdia.fid.pipeline',
                    'edm_bdia.checkpoints', 'edm_bdia.samplers', 'edm_bdia.speed', 'edm_bdia.distributed', 'edm_bdia.files', 'edm_bdia.sample')


@pytest.mark.parametrize('package', LIBRARY_PACKAGES)
def test_library_packages_do_not_import_click(package):
    """The library is usable from a notebook: only edm_bdia.cli speaks click (a fresh interpreter, so modules
    imported by other tests do not count)."""
    code = f'import sys, {package}; print("click" in sys.modules, "edm_bdia.cli" in sys.modules)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ['False', 'False']


def test_the_progress_bar_moves_within_a_round_and_the_run_ends_with_a_summary(capsys, monkeypatch):
    """LockstepBatches.advance puts the bar at the share of the round's images a sampler's steps reached; a
    generate run moves it after each step (then once more after the batch) and prints one summary line with the
    count, the folder and the time."""
    from edm_bdia.runs.lockstep import LockstepBatches
    batches = LockstepBatches(list(range(10)), 4, progress=True)
    positions = []
    for batch in batches:
        batches.advance(0.5)
        positions.append(batches._bar.n)
    assert positions == [2, 5.5, 8.5]  # batches of 4, 3, 3 (NVlabs' split): half of each round after the done ones
    from edm_bdia.generation import generate_images
    moves, advance = [], LockstepBatches.advance
    monkeypatch.setattr(LockstepBatches, 'advance', lambda batches, fraction: moves.append(fraction) or advance(
        batches, fraction))
    for _ in generate_images('toy-mixture-32x32-cond', range(3), device='cpu', num_steps=2, progress=True):
        pass
    assert moves == [0.5, 1, 1]
    assert re.fullmatch(r'Done: 3 images \(\d+\.\d s\)\.', capsys.readouterr().out.strip().splitlines()[-1])


def test_far_too_many_steps_warn_once():
    from edm_bdia.generation import choose_sampler
    with pytest.warns(UserWarning, match='num_steps 5000 is far beyond the published settings'):
        choose_sampler(num_steps=5000)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        choose_sampler(num_steps=256)


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path):
    import errno
    from edm_bdia.files import atomic_write

    def full_disk(file):
        raise OSError(errno.ENOSPC, 'No space left on device')
    with pytest.raises(OSError) as error:
        atomic_write(tmp_path / 'latents.npz', full_disk)
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(tmp_path / 'latents.npz')
    assert os.listdir(tmp_path) == []  # no temporary file left behind
