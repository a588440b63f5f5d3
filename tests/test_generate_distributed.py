"""The generate command over several processes (CPU, gloo): torchrun, two torchrun agents (--nnodes=2), SLURM
variables; byte-identical folders versus one process; SIGKILL + --resume; an error on one rank stops all ranks."""

import os
import signal
import subprocess
import time

import pytest

from helpers.generate import (edm_net_pickle, folder_bytes, free_port, generate_command, pngs, run, run_cli,
                              subprocess_env, torchrun_command)

pytestmark = pytest.mark.usefixtures('one_thread')

SETTINGS = ['--seeds', '0-12', '--steps', 3, '--S_churn', 5]  # churn on: the per-seed noise streams matter too


@pytest.fixture(scope='module')
def net_pkl(tmp_path_factory):
    return edm_net_pickle(tmp_path_factory.mktemp('nets') / 'edm.pkl', resolution=8)


@pytest.fixture(scope='module')
def single_process(net_pkl, tmp_path_factory):
    """The reference folder: one process, one batch of 64, with grid and npz inside the folder."""
    outdir = tmp_path_factory.mktemp('single')
    result = run_cli(['--network', net_pkl, '--outdir', outdir, *SETTINGS, '--grid', outdir / 'grid.png',
                      '--npz', outdir / 'all.npz'])
    assert result.exit_code == 0, result.output
    return folder_bytes(outdir)


def _collections(outdir):
    return ['--grid', os.path.join(outdir, 'grid.png'), '--npz', os.path.join(outdir, 'all.npz')]


def _check(result):
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('nproc, batch', [(2, 4), (3, 2)])
def test_torchrun_matches_single_process(tmp_path, net_pkl, single_process, nproc, batch):
    outdir = str(tmp_path / 'out')
    _check(run(torchrun_command(nproc, '--network', net_pkl, '--outdir', outdir, *SETTINGS, '--batch', batch,
                                *_collections(outdir), extra=['--standalone']), timeout=180))
    assert folder_bytes(outdir) == single_process


def _launch_slurm_tasks(ntasks, args, cwds=None, port=None):
    """Start `ntasks` processes the way `srun` would: SLURM_PROCID/NTASKS/LOCALID set, no torchrun variables."""
    port = port or free_port()
    processes = []
    for rank in range(ntasks):
        env = subprocess_env(SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks), SLURM_LOCALID=str(rank),
                             SLURM_JOB_ID='77', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        processes.append(subprocess.Popen(generate_command(*args), cwd=cwds[rank] if cwds else None, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        outputs.append((process.returncode, stdout + stderr))
    return outputs


def test_slurm_variables_and_an_empty_batch(tmp_path, net_pkl, single_process):
    """srun-style launch (SLURM variables only). One seed on two ranks: rank 1's only batch is empty
    (NVlabs' split, docs/distributed.md, "Work split"); it must take part in every collective and finish cleanly."""
    outdir = str(tmp_path / 'out')
    outputs = _launch_slurm_tasks(2, ['--network', net_pkl, '--outdir', outdir, *SETTINGS[2:], '--seeds', 7])
    assert [code for code, _ in outputs] == [0, 0], outputs
    assert pngs(outdir) == {'000007.png': single_process['000007.png']}


@pytest.mark.slow
def test_two_torchrun_agents_rendezvous(tmp_path, net_pkl, single_process):
    """Multi-node through torchrun's c10d rendezvous, two agents (one process each) on 127.0.0.1."""
    outdir = str(tmp_path / 'out')
    rendezvous = ['--nnodes=2', '--rdzv-backend=c10d', f'--rdzv-endpoint=127.0.0.1:{free_port()}',
                  '--rdzv-id=edm-bdia-test']
    command = torchrun_command(1, '--network', net_pkl, '--outdir', outdir, *SETTINGS, '--batch', 3,
                               *_collections(outdir), extra=rendezvous)
    agents = [subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    outputs = [agent.communicate(timeout=150) for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], outputs
    assert folder_bytes(outdir) == single_process


# ---- an error on one rank only ---------------------------------------------------------------------------------

def _prepare_rank1_failure(tmp_path, net_pkl, kind):
    """Two working directories; relative paths make rank 1 (and only rank 1) fail in the way `kind` says."""
    cwds = [tmp_path / 'node0', tmp_path / 'node1']
    for cwd in cwds:
        cwd.mkdir()
        (cwd / 'net.pkl').write_bytes(open(net_pkl, 'rb').read())
    args = ['--network', 'net.pkl', '--outdir', 'out', '--steps', 2, '--seeds', '0-3,1000-1003', '--batch', 2]
    if kind == 'missing network':
        os.remove(cwds[1] / 'net.pkl')
        expected = 'rank 1: --network net.pkl: no such file'
    else:  # a write fails in the middle of the run (in a writer thread): rank 1 writes seeds 1002-1003
        args.append('--subdirs')
        (cwds[1] / 'out').mkdir()
        (cwds[1] / 'out' / '001000').write_bytes(b'a file where a folder must go')
        expected = 'rank 1: cannot write an image'
    return cwds, args, expected


@pytest.mark.parametrize('kind', ['missing network', 'write error mid-run'])
def test_error_on_one_rank_stops_every_rank(tmp_path, net_pkl, kind):
    cwds, args, expected = _prepare_rank1_failure(tmp_path, net_pkl, kind)
    outputs = _launch_slurm_tasks(2, args, cwds=[str(cwd) for cwd in cwds])
    for code, output in outputs:
        assert code != 0, output
        errors = [line for line in output.splitlines() if line.startswith('Error: ')]
        assert len(errors) == 1 and errors[0].startswith('Error: ' + expected), output
        assert 'Traceback' not in output, output


# ---- SIGKILL and --resume -------------------------------------------------------------------------------------

KILL_SETTINGS = ['--seeds', '0-119', '--steps', 4, '--S_churn', 3]


@pytest.fixture(scope='module')
def uninterrupted(net_pkl, tmp_path_factory):
    outdir = tmp_path_factory.mktemp('uninterrupted')
    result = run_cli(['--network', net_pkl, '--outdir', outdir, *KILL_SETTINGS, '--batch', 3, '--subdirs',
                      '--npz', outdir / 'all.npz'])
    assert result.exit_code == 0, result.output
    return folder_bytes(outdir)


@pytest.mark.parametrize('kill_after_images', [0, 9])
def test_sigkill_then_resume_gives_identical_files(tmp_path, net_pkl, uninterrupted, kill_after_images):
    outdir = tmp_path / 'out'
    args = ['--network', net_pkl, '--outdir', outdir, *KILL_SETTINGS, '--subdirs', '--npz', outdir / 'all.npz']
    process = subprocess.Popen(generate_command(*args, '--batch', 1), env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = outdir / 'edm_bdia_manifest.json'
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if manifest.exists() and len(pngs(outdir)) >= kill_after_images:
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_with = len(pngs(outdir))
    assert process.returncode == -signal.SIGKILL and killed_with < 120, 'the run ended before it was killed'
    result = run_cli([*args, '--resume', '--batch', 7])
    assert result.exit_code == 0, result.output
    assert folder_bytes(outdir) == uninterrupted


def test_ctrl_c_says_how_to_continue_and_resume_finishes_the_folder(tmp_path, net_pkl, uninterrupted):
    """SIGINT (Ctrl-C): one line naming --resume, exit status 130, and the folder continues with --resume to the
    files of an uninterrupted run."""
    outdir = tmp_path / 'out'
    args = ['--network', net_pkl, '--outdir', outdir, *KILL_SETTINGS, '--subdirs', '--npz', outdir / 'all.npz']
    process = subprocess.Popen(generate_command(*args, '--batch', 1), env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and len(pngs(outdir)) < 3:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == ('Error: interrupted; every file written so far is complete: rerun the '
                                               'same command with --resume to continue')
    result = run_cli([*args, '--resume', '--batch', 7])
    assert result.exit_code == 0, result.output
    assert folder_bytes(outdir) == uninterrupted
