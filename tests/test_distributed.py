"""edm_bdia.distributed: no process group for one process, launcher variables (torchrun, SLURM), and
collectives and blocks (`all_ranks`, `rank_zero_first`) that turn an error on one rank into the same error on every
rank (never a hang)."""

import os
import sys

import pytest
import torch
import torch.distributed as dist

from helpers.generate import free_port, run
from edm_bdia import distributed

LAUNCH_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID',
                    'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_JOB_ID', 'SLURM_LAUNCH_NODE_IPADDR')


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAUNCH_VARIABLES:
        monkeypatch.setenv(name, 'x')  # registered with monkeypatch, so whatever the code sets is undone
        monkeypatch.delenv(name)
    return monkeypatch


def test_single_process_creates_no_group_and_binds_no_port(clean_env):
    assert distributed.init('cpu') == torch.device('cpu')
    assert not dist.is_initialized()
    assert 'MASTER_PORT' not in os.environ
    assert (distributed.get_rank(), distributed.get_world_size()) == (0, 1)
    distributed.barrier()
    distributed.check_all_ranks(None)
    t = torch.ones(3, dtype=torch.float64)
    assert distributed.all_reduce_sum_(t) is t and t.tolist() == [1, 1, 1]


def test_single_process_errors_are_raised_as_they_are(clean_env):
    with pytest.raises(ValueError, match='^bad thing$'):
        distributed.check_all_ranks(ValueError('bad thing'))
    with pytest.raises(KeyError):
        with distributed.rank_zero_first():
            raise KeyError('k')
    with distributed.rank_zero_first():
        ran = True
    assert ran
    with pytest.raises(OSError, match='^disk full$'):
        with distributed.all_ranks():
            raise OSError('disk full')
    with distributed.all_ranks():
        value = 42
    assert value == 42


def test_torchrun_variables(clean_env):
    clean_env.setenv('RANK', '3')
    clean_env.setenv('WORLD_SIZE', '4')
    clean_env.setenv('LOCAL_RANK', '1')
    clean_env.setenv('SLURM_PROCID', '0')  # torchrun's variables take precedence
    clean_env.setenv('SLURM_NTASKS', '1')
    assert distributed.launcher_env() == (3, 4, 1)


def test_slurm_variables_without_torchrun(clean_env):
    clean_env.setenv('SLURM_PROCID', '5')
    clean_env.setenv('SLURM_NTASKS', '8')
    clean_env.setenv('SLURM_LOCALID', '1')
    clean_env.setenv('SLURM_JOB_ID', '123457')
    clean_env.setenv('SLURM_LAUNCH_NODE_IPADDR', '10.1.2.3')
    assert distributed.launcher_env() == (5, 8, 1)
    assert os.environ['MASTER_ADDR'] == '10.1.2.3'
    assert os.environ['MASTER_PORT'] == str(20000 + 123457 % 20000)
    clean_env.setenv('MASTER_PORT', '4321')  # explicit settings win
    distributed.launcher_env()
    assert os.environ['MASTER_PORT'] == '4321'


def test_single_slurm_task_is_a_single_process(clean_env):
    clean_env.setenv('SLURM_PROCID', '0')
    clean_env.setenv('SLURM_NTASKS', '1')
    assert distributed.launcher_env() == (0, 1, 0)
    assert 'MASTER_PORT' not in os.environ


def test_missing_cuda_is_a_clear_error(clean_env):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    with pytest.raises(ValueError, match='device is cuda.*use cpu'):
        distributed.resolve_device('cuda')
    assert distributed.resolve_device('auto') == torch.device('cpu')


def test_error_message_forms():
    import click
    assert distributed.error_message(click.UsageError('--x: bad')) == '--x: bad'
    assert distributed.error_message(OSError('disk full')) == 'OSError: disk full'
    assert distributed.error_message(RuntimeError()) == 'RuntimeError'
    assert distributed.error_message(distributed.RankFailure('rank 2: y', 2)) == 'rank 2: y'


COLLECTIVES_SCRIPT = r'''
import os, sys, time
import torch
from edm_bdia import distributed

distributed.init('cpu')
rank, world = distributed.get_rank(), distributed.get_world_size()
report = open(os.path.join(sys.argv[2], f'rank{rank}.txt'), 'w', buffering=1)  # torchrun interleaves stdout


def print(line, flush=None):
    report.write(line + '\n')


total = distributed.all_reduce_sum_(torch.tensor([rank + 0.5, 1e-17], dtype=torch.float64))
print(f'rank {rank} sum {total[0].item()!r} {total[1].item()!r}', flush=True)

try:  # rank 2 fails, the others are fine: everybody must hear about it
    distributed.check_all_ranks(ValueError('boom') if rank == 2 else None)
    print(f'rank {rank} passed', flush=True)
except distributed.RankFailure as failure:
    print(f'rank {rank} failure [{failure.message}] from {failure.rank}', flush=True)

try:  # rank 1 fails inside a block every rank runs
    with distributed.all_ranks():
        if rank == 1:
            raise KeyError('k')
    print(f'rank {rank} block passed', flush=True)
except distributed.RankFailure as failure:
    print(f'rank {rank} block failure [{failure.message}] from {failure.rank}', flush=True)

order = sys.argv[1]
with distributed.rank_zero_first():  # rank 0's body must finish before any other rank's starts
    if rank == 0:
        time.sleep(0.5)
    with open(order, 'a') as f:
        f.write(f'{rank}\n')

try:
    with distributed.rank_zero_first():
        if rank == 0:
            raise FileNotFoundError('no such file: net.pkl')
        print(f'rank {rank} body ran although rank 0 failed', flush=True)
except distributed.RankFailure as failure:
    print(f'rank {rank} zero-first failure [{failure.message}]', flush=True)
print(f'rank {rank} done', flush=True)
distributed.shutdown()
'''


def test_collectives_under_torchrun(tmp_path):
    script = tmp_path / 'collectives.py'
    script.write_text(COLLECTIVES_SCRIPT)
    result = run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=3',
                  f'--master_port={free_port()}', str(script), str(tmp_path / 'order.txt'), str(tmp_path)],
                 timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = set(line for rank in range(3) for line in (tmp_path / f'rank{rank}.txt').read_text().splitlines())
    for rank in range(3):
        assert f'rank {rank} sum 4.5 3e-17' in lines  # 0.5 + 1.5 + 2.5, float64 kept exactly
        assert f'rank {rank} failure [rank 2: ValueError: boom] from 2' in lines
        assert f"rank {rank} block failure [rank 1: KeyError: 'k'] from 1" in lines
        assert f'rank {rank} zero-first failure [rank 0: FileNotFoundError: no such file: net.pkl]' in lines
        assert f'rank {rank} done' in lines
    assert not any('passed' in line or 'although' in line for line in lines)
    order = (tmp_path / 'order.txt').read_text().split()
    assert order[0] == '0' and sorted(order) == ['0', '1', '2']
