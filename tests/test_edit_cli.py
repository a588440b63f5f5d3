"""python -m edm_bdia invert / edit on the built-in analytic model (exact class posterior): exact round trips
through PNG files, noise-like latents, edits that land in the target class, partial strength, sharding, resume,
and one-line errors that leave nothing behind."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

from edm_bdia.analytic import toy_mixture_32x32_cond
from edm_bdia.cli.main import main
from edm_bdia.sample import DEFAULT_BASE, DEFAULT_GAMMA
from helpers.generate import folder_bytes, free_port, pngs, read_npz, run, subprocess_env, tiny_net_pickle

STEPS = ['--steps', 8]
SOURCE_CLASS, TARGET_CLASS = 3, 5


def cli(*args):
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result


def ok(*args):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


def load_pngs(folder):
    return np.stack([np.asarray(PIL.Image.open(os.path.join(folder, name)))
                     for name in sorted(os.listdir(folder)) if name.endswith('.png')])


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """Six class-3 images of the built-in model, generated with the default invertible sampler."""
    folder = tmp_path_factory.mktemp('edit') / 'source'
    ok('generate', '--outdir', folder, '--seeds', '0-5', '--class', SOURCE_CLASS, '--gamma', DEFAULT_GAMMA, *STEPS)
    return folder


@pytest.fixture(scope='module')
def latents(source):
    path = source.parent / 'latents.npz'
    ok('invert', '--images', source, '--class', SOURCE_CLASS, '--out', path, '--batch', 4, *STEPS)
    return path


def test_latents_file_holds_noise_like_latents_and_its_settings(latents, source):
    with np.load(latents, allow_pickle=False) as npz:
        assert npz['x_start'].dtype == np.float64 and npz['x_start'].shape == (6, 3, 32, 32)
        settings = json.loads(str(npz['settings']))
        assert 0.8 < npz['latents'].std() < 1.2  # N(0, I) noise has std 1
        assert np.array_equal(npz['labels'], [SOURCE_CLASS] * 6)
        assert [os.path.basename(name) for name in npz['names']] == sorted(pngs(source))
    assert settings['gamma'] == DEFAULT_GAMMA and settings['base'] == DEFAULT_BASE and settings['start_step'] == 0
    assert len(settings['sigmas']) == 9 and settings['sigmas'][-1] == 0
    assert len(settings['network']['sha256']) == 64 and 'encoder' not in settings  # EDM: none
    assert not os.path.exists(str(latents) + '.parts')  # joined, then removed


def test_edit_without_class_gives_the_source_pngs_back(latents, source, tmp_path):
    ok('edit', '--latents', latents, '--outdir', tmp_path / 'back')
    assert np.array_equal(load_pngs(tmp_path / 'back'), load_pngs(source))


def test_the_inversions_tile_is_recorded_and_replayed_by_edit(latents, source, tmp_path, monkeypatch):
    """One image is inverted on tiles of one sample (no more samples per call than images), and edit replays those
    calls from the latents file's record (a round trip to the same PNG bytes); a file without a recorded tile
    (older versions) is edited on the default tile of 8, the tile it was inverted with."""
    import edm_bdia.speed.accelerated as accelerated
    tiles = []
    call_in_tiles = accelerated.call_in_tiles
    monkeypatch.setattr(accelerated, 'call_in_tiles', lambda call, tile, *args: tiles.append(tile) or call_in_tiles(
        call, tile, *args))
    one = tmp_path / 'one'
    one.mkdir()
    first = sorted(pngs(source))[0]
    (one / first).write_bytes((source / first).read_bytes())
    ok('invert', '--images', one, '--class', SOURCE_CLASS, '--out', tmp_path / 'one.npz', *STEPS)
    with np.load(tmp_path / 'one.npz') as npz:
        assert json.loads(str(npz['settings']))['tile'] == 1
    ok('edit', '--latents', tmp_path / 'one.npz', '--outdir', tmp_path / 'back')
    assert tiles and set(tiles) == {1}
    assert pngs(tmp_path / 'back') == {'000000.png': (source / first).read_bytes()}

    ok('invert', '--images', source, '--class', SOURCE_CLASS, '--out', tmp_path / 'tile8.npz', '--tile', 8, *STEPS)
    with np.load(tmp_path / 'tile8.npz') as npz:
        arrays = dict(npz)
    settings = json.loads(str(arrays['settings']))
    assert settings.pop('tile') == 8
    arrays['settings'] = np.asarray(json.dumps(settings))
    np.savez(tmp_path / 'old.npz', **arrays)
    tiles.clear()
    ok('edit', '--latents', tmp_path / 'old.npz', '--outdir', tmp_path / 'old')
    assert set(tiles) == {8} and np.array_equal(load_pngs(tmp_path / 'old'), load_pngs(source))
    with np.load(latents) as npz:
        assert json.loads(str(npz['settings']))['tile'] == 6  # six images: tiles of 6
    result = cli('edit', '--latents', latents, '--outdir', tmp_path / 'x', '--tile', 2)
    assert result.exit_code != 0 and 'Error: --tile: a latents file carries its sampler settings and tile' in \
        result.output


def test_edit_to_another_class_lands_there_and_stays_in_range(latents, source, tmp_path):
    ok('edit', '--latents', latents, '--outdir', tmp_path / 'edited', '--class', TARGET_CLASS)
    edited = torch.as_tensor(load_pngs(tmp_path / 'edited')).permute(0, 3, 1, 2).to(torch.float64) / 127.5 - 1
    posterior = toy_mixture_32x32_cond().class_posterior(edited)
    assert (posterior.argmax(dim=1) == TARGET_CLASS).all()  # the exact p(class | image) of the model
    original = torch.as_tensor(load_pngs(source)).permute(0, 3, 1, 2).to(torch.float64) / 127.5 - 1
    assert (toy_mixture_32x32_cond().class_posterior(original).argmax(dim=1) == SOURCE_CLASS).all()


def test_partial_strength_keeps_more_of_the_image(source, tmp_path):
    changes = {}
    for strength in (0.3, 1.0):
        ok('edit', '--images', source, '--source-class', SOURCE_CLASS, '--class', TARGET_CLASS, '--strength', strength,
           '--outdir', tmp_path / str(strength), *STEPS)
        changes[strength] = np.abs(load_pngs(tmp_path / str(strength)).astype(int) - load_pngs(source)).mean()
    assert 0 < changes[0.3] < changes[1.0]


def test_images_straight_to_edit_equal_invert_then_edit(latents, source, tmp_path):
    ok('edit', '--latents', latents, '--outdir', tmp_path / 'two-step', '--class', TARGET_CLASS)
    ok('edit', '--images', source, '--source-class', SOURCE_CLASS, '--class', TARGET_CLASS, '--outdir',
       tmp_path / 'one-step', *STEPS)
    assert pngs(tmp_path / 'two-step') == pngs(tmp_path / 'one-step')


def test_batch_size_does_not_change_the_latents(latents, source, tmp_path):
    ok('invert', '--images', source, '--class', SOURCE_CLASS, '--out', tmp_path / 'b1.npz', '--batch', 1, *STEPS)
    with np.load(latents) as a, np.load(tmp_path / 'b1.npz') as b:
        assert np.array_equal(a['x_start'], b['x_start']) and np.array_equal(a['x_next'], b['x_next'])


def test_generate_npz_brings_its_labels(tmp_path):
    ok('generate', '--outdir', tmp_path / 'gen', '--seeds', '0-2', '--npz', tmp_path / 'gen.npz', *STEPS)
    ok('invert', '--images', tmp_path / 'gen.npz', '--out', tmp_path / 'lat.npz', *STEPS)
    ok('edit', '--latents', tmp_path / 'lat.npz', '--outdir', tmp_path / 'back')
    assert np.array_equal(load_pngs(tmp_path / 'back'), load_pngs(tmp_path / 'gen'))


@pytest.mark.slow
def test_two_processes_write_the_same_latents(latents, source, tmp_path):
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
               f'--rdzv-endpoint=127.0.0.1:{free_port()}', '-m', 'edm_bdia', 'invert', '--images', str(source),
               '--class', str(SOURCE_CLASS), '--out', str(tmp_path / 'two.npz'), '--batch', '2', '--steps', '8']
    result = run(command, timeout=300)
    assert result.returncode == 0, result.stderr
    with np.load(latents) as a, np.load(tmp_path / 'two.npz') as b:
        assert np.array_equal(a['x_start'], b['x_start']) and np.array_equal(a['x_next'], b['x_next'])


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_latents(latents, source, tmp_path):
    out = tmp_path / 'resumed.npz'
    args = ['invert', '--images', source, '--class', SOURCE_CLASS, '--out', out, *STEPS]
    process = subprocess.Popen([sys.executable, '-m', 'edm_bdia', *map(str, args), '--batch', '1'],
                               env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / 'resumed.npz.parts'
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if parts.exists() and len([n for n in os.listdir(parts) if n.endswith('.npz')]) >= 2:
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and not out.exists(), 'the run ended before it was killed'
    ok(*args, '--resume', '--batch', 4)
    with np.load(latents) as a, np.load(out) as b:
        assert np.array_equal(a['x_start'], b['x_start']) and np.array_equal(a['x_next'], b['x_next'])


@pytest.mark.usefixtures('one_thread')
def test_the_bar_follows_the_sampler_steps_and_each_run_ends_with_a_summary(source, tmp_path, monkeypatch):
    """In every round (batches of 3 of the 6 images) the bar moves to k / K after the k-th of the K sampler
    callbacks, before LockstepBatches' own move to 1 after the batch: invert's 8 (the encoding start, then the
    inverted steps 7 .. 1), edit's 7 from a latents file (steps 1 .. 7), and edit --images at strength 0.5 its
    encoding's 4 (the start, steps 7 .. 5) then its regeneration's 3 (steps 5 .. 7). Each run ends with a summary
    line on stdout."""
    from edm_bdia.runs.lockstep import LockstepBatches
    moves = {}  # the images done before a round -> the fractions of the round the bar was moved to
    advance = LockstepBatches.advance

    def recorded(batches, fraction):
        moves.setdefault(batches._round[0], []).append(fraction)
        advance(batches, fraction)
    monkeypatch.setattr(LockstepBatches, 'advance', recorded)
    latents, edited, strength_half = tmp_path / 'latents.npz', tmp_path / 'edited', tmp_path / 'strength-half'
    runs = [(['invert', '--images', source, '--class', SOURCE_CLASS, '--out', latents, *STEPS], 8,
             f'Done: 6 images inverted to {latents}'),
            (['edit', '--latents', latents, '--class', TARGET_CLASS, '--outdir', edited], 7,
             f'Done: 6 images in {edited}'),
            (['edit', '--images', source, '--source-class', SOURCE_CLASS, '--class', TARGET_CLASS, '--strength', 0.5,
              '--outdir', strength_half, *STEPS], 4 + 3, f'Done: 6 images in {strength_half}')]
    for args, calls, summary in runs:
        moves.clear()
        result = ok(*args, '--batch', 3)
        assert moves == {done: [k / calls for k in range(1, calls + 1)] + [1] for done in (0, 3)}, args[0]
        assert re.fullmatch(rf'{re.escape(summary)} \(\d+\.\d s\)\.', result.stdout.strip().splitlines()[-1])


def _interrupted(args, started):
    """Run `python -m edm_bdia *args` in a subprocess and send it SIGINT (Ctrl-C) once `started()` (its first output
    is complete); check that it says how to continue, with exit status 130."""
    process = subprocess.Popen([sys.executable, '-m', 'edm_bdia', *map(str, args)], env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and not started():
        time.sleep(0.001)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, f'the run ended before it was interrupted: {stderr}'
    assert stderr.strip().splitlines()[-1] == ('Error: interrupted; every file written so far is complete: rerun the '
                                               'same command with --resume to continue')


@pytest.mark.slow
@pytest.mark.usefixtures('one_thread')
def test_ctrl_c_during_invert_says_how_to_continue_and_resume_gives_the_same_latents(latents, source, tmp_path):
    out = tmp_path / 'resumed.npz'
    args = ['invert', '--images', source, '--class', SOURCE_CLASS, '--out', out, *STEPS]
    parts = tmp_path / 'resumed.npz.parts'
    _interrupted([*args, '--batch', 1], lambda: parts.exists() and any(n.endswith('.npz') for n in os.listdir(parts)))
    assert not out.exists()
    ok(*args, '--resume', '--batch', 4)
    as_bytes = {path: {key: array.tobytes() for key, array in read_npz(path).items()} for path in (latents, out)}
    assert as_bytes[out] == as_bytes[latents]


@pytest.mark.slow
@pytest.mark.usefixtures('one_thread')
def test_ctrl_c_during_edit_says_how_to_continue_and_resume_gives_the_same_folder(source, tmp_path):
    args = ['edit', '--images', source, '--source-class', SOURCE_CLASS, '--class', TARGET_CLASS, *STEPS]
    ok(*args, '--outdir', tmp_path / 'uninterrupted')
    outdir = tmp_path / 'resumed'
    _interrupted([*args, '--outdir', outdir, '--batch', 1], lambda: bool(pngs(outdir)))
    assert len(pngs(outdir)) < len(pngs(tmp_path / 'uninterrupted'))
    ok(*args, '--outdir', outdir, '--resume', '--batch', 4)
    assert folder_bytes(outdir) == folder_bytes(tmp_path / 'uninterrupted')


def fails(*args, fragments, leftovers=()):
    result = cli(*args)
    errors = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert result.exit_code != 0 and len(errors) == 1 and 'Traceback' not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output
    for path in leftovers:
        assert not os.path.exists(path) or not pngs(path), f'{path} was written'


def test_bad_input_is_one_error_line_and_writes_nothing(latents, source, tmp_path):
    out = tmp_path / 'out'
    fails('edit', '--latents', latents, '--outdir', out, '--strength', 0.5, fragments=['--strength', 'latents file'],
          leftovers=[out])
    fails('edit', '--images', source, '--source-class', 3, '--strength', 1.5, '--outdir', out,
          fragments=['--strength', '(0, 1]'], leftovers=[out])
    fails('edit', '--images', source, '--source-class', 3, '--strength', 0, '--outdir', out,
          fragments=['--strength'], leftovers=[out])
    fails('edit', '--latents', latents, '--images', source, '--outdir', out, fragments=['--latents', '--images'])
    fails('edit', '--latents', latents, '--outdir', out, '--class', 10, fragments=['--class is 10', '10 classes'],
          leftovers=[out])
    fails('invert', '--images', source, '--out', tmp_path / 'x.npz', fragments=['--class', 'conditional'],
          leftovers=[tmp_path / 'x.npz'])
    fails('invert', '--images', tmp_path / 'missing', '--class', 3, '--out', tmp_path / 'x.npz',
          fragments=['does not exist'])
    fails('invert', '--images', source, '--class', 3, '--out', tmp_path / 'x.npz', '--gamma', 0,
          fragments=['gamma'], leftovers=[tmp_path / 'x.npz'])
    (tmp_path / 'junk.npz').write_bytes(b'not a zip')
    fails('edit', '--latents', tmp_path / 'junk.npz', '--outdir', out, fragments=['--latents', 'invert'],
          leftovers=[out])


def test_latents_of_another_network_are_refused(latents, tmp_path):
    other = tiny_net_pickle(tmp_path / 'other.pkl', resolution=32, label_dim=10)
    fails('edit', '--latents', latents, '--network', other, '--trust-pickle-code', '--outdir', tmp_path / 'out',
          fragments=['--latents', 'another network'], leftovers=[tmp_path / 'out'])


def test_images_of_another_size_are_refused(tmp_path):
    folder = tmp_path / 'small'
    folder.mkdir()
    PIL.Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / 'a.png')
    fails('invert', '--images', folder, '--class', 3, '--out', tmp_path / 'x.npz', fragments=['16x16', '32x32'],
          leftovers=[tmp_path / 'x.npz'])


def test_guided_round_trip_through_png_files_and_the_guiding_network_it_needs(tmp_path):
    """Images generated with autoguidance-style guidance (edm2's command, the invertible sampler), inverted and
    regenerated with the same guiding network: the same PNG bytes; the latents file names the guiding network, and
    an edit without it, or with another, is refused before any work."""
    from helpers.generate import edm_net_pickle
    gnet = edm_net_pickle(tmp_path / 'gnet.pkl', resolution=32, label_dim=10, seed=3)
    other = edm_net_pickle(tmp_path / 'other.pkl', resolution=32, label_dim=10, seed=4)
    guide = ['--gnet', gnet, '--guidance', 1.5]
    source, latents, back = tmp_path / 'source', tmp_path / 'latents.npz', tmp_path / 'back'
    ok('generate-images', '--net', 'toy-mixture-32x32-cond', '--outdir', source, '--seeds', '0-2', '--class',
       SOURCE_CLASS, '--gamma', DEFAULT_GAMMA, *STEPS, *guide)
    ok('invert', '--images', source, '--class', SOURCE_CLASS, '--out', latents, *STEPS, *guide)
    with np.load(latents, allow_pickle=False) as npz:
        settings = json.loads(str(npz['settings']))
    assert settings['guidance'] == 1.5 and len(settings['gnet']['sha256']) == 64
    ok('edit', '--latents', latents, '--outdir', back, '--gnet', gnet)
    assert pngs(back) == pngs(source)
    for extra, message in (([], '--gnet must be the guiding network'), (['--gnet', other], 'sha256')):
        result = cli('edit', '--latents', latents, '--outdir', tmp_path / 'refused', *extra)
        assert result.exit_code == 1 and message in result.output, result.output
        assert not (tmp_path / 'refused').exists()
