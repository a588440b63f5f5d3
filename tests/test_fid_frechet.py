"""Frechet distance maths: exact cases, symmetry, invariances, agreement with scipy's sqrtm (EDM's formula), zero
for identical statistics and never negative, also where fewer images than features make the covariance singular."""

import numpy as np
import pytest
import scipy.linalg

from edm_bdia.errors import ArgumentError
from edm_bdia.fid.frechet import METHODS, StatisticsError, frechet_distance


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


def _square_root_of_product_eigenvalues(mu1, s1, mu2, s2):
    """The shortcut the default avoids: tr sqrt(s1 s2) from the eigenvalues of s1^(1/2) s2 s1^(1/2)."""
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    product = root @ s2 @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt


def _inception_like_stats(rng, dim, num):
    """Non-negative features (like pooled ReLU activations) of `num` < `dim` images: a singular covariance."""
    features = np.abs(rng.standard_normal((num, dim)) @ rng.standard_normal((dim, dim)) / np.sqrt(dim))
    return features.mean(0), np.cov(features, rowvar=False)


def test_identical_singular_statistics_give_zero_where_the_eigenvalue_shortcut_goes_negative():
    mu, sigma = _inception_like_stats(np.random.default_rng(6), dim=128, num=16)  # rank 15 of 128
    # The rounding noise (~1e-16) in the 113 zero eigenvalues of the product becomes ~1e-8 each under the square
    # root: the shortcut reports a clearly negative distance of a set to itself (-1e-4 with 2048 features).
    assert _square_root_of_product_eigenvalues(mu, sigma, mu, sigma) < -1e-6
    assert 0 <= frechet_distance(mu, sigma, mu, sigma) < 1e-9


def test_never_negative_for_nearly_identical_or_singular_statistics():
    rng = np.random.default_rng(7)
    for trial in range(20):
        mu, sigma = _inception_like_stats(rng, dim=48, num=int(rng.integers(3, 80)))
        noise = rng.standard_normal(sigma.shape) * 10.0 ** -rng.integers(6, 16)
        nearby = sigma + noise @ noise.T  # still a covariance, a hair away from sigma
        assert frechet_distance(mu, sigma, mu, nearby) >= 0, trial
        assert frechet_distance(mu, sigma, mu, sigma) >= 0, trial


def test_unknown_method_names_the_argument(pair):
    with pytest.raises(ArgumentError, match="method 'eigh' is unknown; choose one of svd, scipy"):
        frechet_distance(*pair, method='eigh')


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


@pytest.mark.parametrize('method', METHODS)
def test_symmetric_in_its_arguments(pair, method):
    assert frechet_distance(*pair, method=method) == pytest.approx(
        frechet_distance(*pair[2:], *pair[:2], method=method), abs=1e-10)


@pytest.mark.parametrize('method', METHODS)
def test_invariant_to_an_orthogonal_rotation_of_feature_space(pair, method):
    mu1, s1, mu2, s2 = pair
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((64, 64)))[0]
    rotated = frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T, method=method)
    assert rotated == pytest.approx(frechet_distance(*pair, method=method), abs=1e-9)


@pytest.mark.parametrize('method', METHODS)
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


@pytest.mark.parametrize('method', ['svd'])
def test_agrees_with_scipy_sqrtm_on_well_conditioned_statistics(method):
    stats = _well_conditioned_pair(256, seed=4)
    assert frechet_distance(*stats, method=method) == pytest.approx(_edm_formula(*stats), abs=1e-8)


@pytest.mark.slow  # scipy's sqrtm of a 2048x2048 matrix: ~10 s on 2 idle cores, minutes on a loaded machine
def test_agrees_with_scipy_sqrtm_on_2048_dim_statistics():
    stats = _well_conditioned_pair(2048, seed=5)
    assert frechet_distance(*stats, method='svd') == pytest.approx(_edm_formula(*stats), abs=1e-8)


@pytest.mark.slow  # two 2048x2048 eigendecompositions and an SVD: seconds on 2 idle cores
def test_a_set_of_24_images_against_itself_is_zero_with_inception_sized_features():
    mu, sigma = _inception_like_stats(np.random.default_rng(8), dim=2048, num=24)
    assert 0 <= frechet_distance(mu, sigma, mu, sigma) < 1e-9


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
    with pytest.raises(ArgumentError, match='method scipy: SciPy 1.12.0 has a broken sqrtm') as error:
        frechet_distance(*pair, method='scipy')
    assert error.value.argument == 'method'


@pytest.mark.parametrize('bad, message', [
    (dict(mu2=np.zeros(3), sigma2=np.eye(3)), 'feature dimensions differ'),
    (dict(sigma2=np.full((64, 64), np.nan)), 'NaN'),
    (dict(sigma2=np.eye(5)), 'mu must be'),
])
def test_bad_statistics_are_rejected_with_a_clear_message(pair, bad, message):
    args = dict(zip(['mu1', 'sigma1', 'mu2', 'sigma2'], pair), **bad)
    with pytest.raises(StatisticsError, match=message):
        frechet_distance(**args)
