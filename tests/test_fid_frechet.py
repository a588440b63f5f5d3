"""Frechet distance maths (fid.md §6.5.1): exact cases, symmetry, invariances, agreement with scipy's sqrtm."""

import numpy as np
import pytest
import scipy.linalg

from edm_bdia.fid.frechet import METHODS, FrechetError, frechet_distance


def _random_stats(rng, dim, num):
    """Sample statistics of ``num`` correlated Gaussian vectors (unbiased covariance)."""
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    x = rng.standard_normal((num, dim)) @ mixing + rng.standard_normal(dim)
    return x.mean(0), np.cov(x, rowvar=False, ddof=1)


@pytest.fixture(scope='module')
def pair():
    rng = np.random.default_rng(0)
    return _random_stats(rng, 64, 400) + _random_stats(rng, 64, 400)


@pytest.mark.parametrize('method', METHODS)
def test_identical_statistics_give_zero(pair, method):
    mu, sigma = pair[:2]
    assert abs(frechet_distance(mu, sigma, mu, sigma, method=method)) < 1e-10


@pytest.mark.parametrize('method', METHODS)
def test_commuting_covariances_match_the_closed_form(method):
    # Diagonal covariances commute: tr sqrt(S1 S2) = sum sqrt(a_i b_i), so FID = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 5, 32), rng.uniform(0.1, 5, 32)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    q = np.linalg.qr(rng.standard_normal((32, 32)))[0]  # a shared rotation keeps them commuting
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    fid = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T, method=method)
    assert fid == pytest.approx(exact, abs=1e-10)


@pytest.mark.parametrize('method', ['eigh', 'svd'])
def test_symmetric_in_its_arguments(pair, method):
    assert frechet_distance(*pair, method=method) == pytest.approx(
        frechet_distance(*pair[2:], *pair[:2], method=method), abs=1e-10)


@pytest.mark.parametrize('method', ['eigh', 'svd'])
def test_invariant_to_an_orthogonal_rotation_of_feature_space(pair, method):
    mu1, s1, mu2, s2 = pair
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((64, 64)))[0]
    rotated = frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T, method=method)
    assert rotated == pytest.approx(frechet_distance(*pair, method=method), abs=1e-9)


@pytest.mark.parametrize('method', ['eigh', 'svd'])
def test_rank_deficient_statistics_give_a_finite_real_value(method):
    rng = np.random.default_rng(3)
    mu1, s1 = _random_stats(rng, 128, 20)  # 20 samples in 128 dimensions: rank 19
    mu2, s2 = _random_stats(rng, 128, 30)
    fid = frechet_distance(mu1, s1, mu2, s2, method=method)
    assert isinstance(fid, float) and np.isfinite(fid) and fid > 0


def _edm_formula(mu1, s1, mu2, s2):
    """EDM's fid.py formula, written out independently of the package."""
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * np.real(np.trace(scipy.linalg.sqrtm(s1 @ s2)))


def _well_conditioned_pair(dim, seed):
    """Wishart covariances from 2*dim samples (condition number ~ 30) and random means."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal((2, dim, 2 * dim))
    return rng.standard_normal(dim), x1 @ x1.T / (2 * dim), rng.standard_normal(dim), x2 @ x2.T / (2 * dim)


@pytest.mark.parametrize('method', ['eigh', 'svd'])
def test_agrees_with_scipy_sqrtm_on_well_conditioned_statistics(method):
    stats = _well_conditioned_pair(256, seed=4)
    assert frechet_distance(*stats, method=method) == pytest.approx(_edm_formula(*stats), abs=1e-8)


@pytest.mark.slow  # scipy's sqrtm of a 2048x2048 matrix: ~10 s on 2 idle cores, minutes on a loaded machine
def test_agrees_with_scipy_sqrtm_on_2048_dim_statistics():
    stats = _well_conditioned_pair(2048, seed=5)
    assert frechet_distance(*stats, method='eigh') == pytest.approx(_edm_formula(*stats), abs=1e-8)


def test_scipy_mode_never_passes_disp(monkeypatch, pair):
    calls, real_sqrtm = [], scipy.linalg.sqrtm

    def sqrtm_without_disp(matrix):  # SciPy >= 1.18 signature: a disp keyword would be a TypeError
        calls.append(matrix.shape)
        return real_sqrtm(matrix)

    monkeypatch.setattr(scipy.linalg, 'sqrtm', sqrtm_without_disp)
    assert frechet_distance(*pair, method='scipy') == pytest.approx(frechet_distance(*pair), abs=1e-9)
    assert calls == [(64, 64)]


def test_refuses_broken_scipy_releases(monkeypatch, pair):
    monkeypatch.setattr(scipy, '__version__', '1.12.0')
    with pytest.raises(FrechetError, match='1.12.0'):
        frechet_distance(*pair, method='scipy')


@pytest.mark.parametrize('bad, message', [
    (dict(mu2=np.zeros(3), sigma2=np.eye(3)), 'feature dimensions differ'),
    (dict(sigma2=np.full((64, 64), np.nan)), 'NaN'),
    (dict(sigma2=np.eye(5)), 'mu must be'),
])
def test_bad_statistics_are_rejected_with_a_clear_message(pair, bad, message):
    args = dict(zip(['mu1', 'sigma1', 'mu2', 'sigma2'], pair), **bad)
    with pytest.raises(FrechetError, match=message):
        frechet_distance(**args)
