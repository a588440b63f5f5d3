"""Feature statistics: float64 sums vs numpy, EDM's rank/batch split, and real 2-rank sharding under torchrun."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

from edm_bdia.distributed import rank_batches
from edm_bdia.fid.stats import FeatureStats, TooFewFeaturesError
from helpers.fid import save_trusted_standin

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _features(num, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((num, dim)) * rng.uniform(0.5, 3, dim) + 5).astype(np.float32)


def test_mean_and_unbiased_covariance_match_numpy():
    f = _features(50)
    stats = FeatureStats(16)
    for chunk in np.array_split(f, 4):
        stats.update(torch.from_numpy(chunk))
    mu, sigma = stats.mean_cov()
    assert mu.dtype == sigma.dtype == np.float64 and stats.count == 50
    assert np.abs(mu - f.astype(np.float64).mean(0)).max() < 1e-12
    assert np.abs(sigma - np.cov(f.astype(np.float64), rowvar=False, ddof=1)).max() < 1e-11


@pytest.mark.parametrize('world_size', [1, 2, 3, 4])
def test_rank_batches_partition_the_selection_and_shards_sum_to_the_whole(world_size):
    indices = np.sort(np.random.default_rng(1).choice(100, 37, replace=False))
    f = _features(100)
    whole = FeatureStats(16)
    whole.update(torch.from_numpy(f[indices]))
    shards = [FeatureStats(16) for _ in range(world_size)]
    seen = []
    for rank, shard in enumerate(shards):
        for batch in rank_batches(indices.tolist(), 5, rank, world_size):
            assert 0 < len(batch) <= 5
            seen += batch
            shard.update(torch.from_numpy(f[batch]))
    assert sorted(seen) == indices.tolist()
    total = FeatureStats(16)
    total.count = sum(s.count for s in shards)
    total.sum, total.gram = sum(s.sum for s in shards), sum(s.gram for s in shards)
    for a, b in zip(whole.mean_cov(), total.mean_cov()):
        assert np.abs(a - b).max() < 1e-12


def test_rank_batches_follow_edms_round_robin_split():
    # N=10, batch 2, 2 ranks: ((10-1)//4 + 1) * 2 = 6 batches of sizes 2,2,2,2,1,1; rank r takes r::2.
    assert list(rank_batches(list(range(10)), 2, 0, 2)) == [[0, 1], [4, 5], [8]]
    assert list(rank_batches(list(range(10)), 2, 1, 2)) == [[2, 3], [6, 7], [9]]
    assert list(rank_batches([0], 4, 1, 2)) == [[]]  # an empty shard is fine


def test_fewer_than_two_images_is_an_error():
    stats = FeatureStats(4)
    stats.update(torch.ones(1, 4))
    with pytest.raises(TooFewFeaturesError, match='at least 2'):
        stats.mean_cov()


def _write_pngs(folder, count, seed=0, size=16):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(f'{folder}/{i:03d}.png')


def _fid_ref(args, nproc=None, timeout=180):
    launcher = [sys.executable] if nproc is None else [sys.executable, '-m', 'torch.distributed.run',
                                                       '--standalone', f'--nproc_per_node={nproc}']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    return subprocess.run(launcher + [os.path.join(REPO, 'fid.py'), 'ref', '--workers=0', '--device=cpu',
                                      '--trust-pickle-code'] + args,
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.fixture(scope='module')
def sharding_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('sharding')
    _write_pngs(root / 'images', 23)
    return root, save_trusted_standin(root / 'standin.pkl')


def test_two_gloo_ranks_equal_one_process(sharding_inputs):
    root, detector = sharding_inputs
    common = ['--data', str(root / 'images'), '--batch=4', f'--detector={detector}']
    single = _fid_ref(common + ['--dest', str(root / 'one.npz')])
    assert single.returncode == 0, single.stderr
    sharded = _fid_ref(common + ['--dest', str(root / 'two.npz')], nproc=2)
    assert sharded.returncode == 0, sharded.stderr
    one, two = np.load(root / 'one.npz'), np.load(root / 'two.npz')
    assert np.abs(one['mu'] - two['mu']).max() < 1e-12
    assert np.abs(one['sigma'] - two['sigma']).max() < 1e-12


def test_a_failure_on_one_rank_stops_every_rank_with_the_message(sharding_inputs):
    root, detector = sharding_inputs
    _write_pngs(root / 'broken', 8)
    (root / 'broken' / '006.png').write_bytes(b'not a png')  # batch [6, 7] belongs to rank 1
    result = _fid_ref(['--data', str(root / 'broken'), '--batch=2', f'--detector={detector}',
                       '--dest', str(root / 'broken.npz')], nproc=2)
    assert result.returncode != 0
    assert result.stderr.count('006.png') >= 2  # both ranks report rank 1's error
    assert not (root / 'broken.npz').exists()
