"""Frechet distance between Gaussians N(mu1, sigma1), N(mu2, sigma2) in float64: the FID of two sets of features
(docs/fid.md, 'Fréchet distance').

    FID = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2)

The covariance part is the squared Bures-Wasserstein distance, which is also a least-squares (Procrustes) problem:
for any factors L1 L1^T = sigma1, L2 L2^T = sigma2 it equals min over orthogonal U of ||L1 - L2 U||_F^2, reached
at U = P Q^T where L2^T L1 = P S Q^T is an SVD (Bhatia, Jain & Lim 2019, "On the Bures-Wasserstein distance
between positive definite matrices", Theorem 1). Methods:

* ``svd`` (default): that residual, computed as a sum of squares, so the result is never negative and is ~1e-13 for
  identical statistics. The factors come from eigendecompositions with the negative eigenvalues (rounding noise
  of a singular covariance) set to 0. Forming sigma1^(1/2) sigma2 sigma1^(1/2) and taking square roots of its
  eigenvalues instead (the "eigh" shortcut) turns rounding noise of size 1e-14 in the zero eigenvalues of a
  singular covariance (fewer images than features) into errors of 1e-7 each, -1e-4 in total: it is not offered.
* ``scipy``: EDM's formula, trace of ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` (real part), to reproduce EDM's own
  numbers, rounding included (for a singular covariance against itself it gives about -1e-5, like EDM). ``disp``
  is never passed (removed in SciPy 1.18), and SciPy 1.11.2-1.12.x (garbage on ill-conditioned input) is refused.
"""

import numpy as np

from edm_bdia.fid.errors import FidArgumentError, FidError

METHODS = ('svd', 'scipy')
DEFAULT_METHOD = 'svd'


class StatisticsError(FidError):
    """Feature statistics that are malformed or cannot be compared."""


# Feature statistics beyond this magnitude are no detector's (Inception and DINOv2 features are O(1)-O(10)); their
# squares would also overflow the distance to inf.
MAX_STATISTIC = 1e8
# A covariance's eigenvalues are >= 0; rounding leaves negative ones of about 1e-13 of the largest (rank-deficient
# covariances of fewer images than dimensions included).
PSD_TOLERANCE = 1e-6


def checked_statistics(mu, sigma, label):
    """(mu, sigma) as float64 arrays, checked: shapes [D] and [D, D], finite, of plausible magnitude, sigma
    symmetric and positive semi-definite within rounding (a covariance). `label` names them in the
    StatisticsError."""
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise StatisticsError(f'{label}: mu must be [D] and sigma [D, D], got {mu.shape} and {sigma.shape}')
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatisticsError(f'{label}: the statistics contain NaN or infinity')
    largest = max(np.abs(mu).max(initial=0), np.abs(sigma).max(initial=0))
    if largest > MAX_STATISTIC:
        raise StatisticsError(f'{label}: values up to {largest:.3g} are no detector\'s feature statistics (at most '
                              f'{MAX_STATISTIC:g}); check that the file holds feature means and covariances')
    if not np.allclose(sigma, sigma.T, rtol=0, atol=1e-6 * max(np.abs(sigma).max(initial=0), 1e-300)):
        raise StatisticsError(f'{label}: sigma is not symmetric, so it is not a covariance matrix')
    eigenvalues = np.linalg.eigvalsh(sigma)
    if eigenvalues.size and eigenvalues[0] < -PSD_TOLERANCE * max(eigenvalues[-1], 1e-300):
        raise StatisticsError(f'{label}: sigma has the negative eigenvalue {eigenvalues[0]:.3g} (largest '
                              f'{eigenvalues[-1]:.3g}), so it is not a covariance matrix')
    return mu, sigma


def psd_factor(sigma):
    """L with L L^T = sigma, after setting sigma's negative eigenvalues (rounding noise) to 0."""
    w, v = np.linalg.eigh(sigma)
    return v * np.sqrt(np.clip(w, 0, None))


def _covariance_term_svd(sigma1, sigma2):
    l1, l2 = psd_factor(sigma1), psd_factor(sigma2)
    p, _, qt = np.linalg.svd(l2.T @ l1)
    # Bhatia, Jain & Lim 2019, Thm. 1: tr s1 + tr s2 - 2 tr sqrt(s1^(1/2) s2 s1^(1/2)) = min_U ||L1 - L2 U||_F^2
    return np.square(l1 - l2 @ (p @ qt)).sum()


def _covariance_term_scipy(sigma1, sigma2):
    import scipy
    import scipy.linalg
    version = tuple(int(part) for part in scipy.__version__.split('.')[:3] if part.isdigit())
    if (1, 11, 2) <= version < (1, 13):
        raise FidArgumentError('method', f'scipy: SciPy {scipy.__version__} has a broken sqrtm (SciPy 1.11.2-1.12.x '
                                         'return garbage for ill-conditioned input); upgrade SciPy or use `method` svd')
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    trace = np.trace(root)
    if not np.isfinite(trace):
        raise FidArgumentError('method', 'scipy: sqrtm returned a non-finite matrix; use `method` svd')
    # Heusel et al. 2017 (FID), as EDM computes it: tr s1 + tr s2 - 2 tr sqrtm(s1 s2)
    return np.trace(sigma1) + np.trace(sigma2) - 2 * float(np.real(trace))


_COVARIANCE_TERM = {'svd': _covariance_term_svd, 'scipy': _covariance_term_scipy}


def frechet_distance(mu1, sigma1, mu2, sigma2, method=DEFAULT_METHOD) -> float:
    """FID between two sets of statistics, a Python float (see the module docstring for the methods)."""
    if method not in _COVARIANCE_TERM:
        raise FidArgumentError('method', f'{method!r} is unknown; choose one of {", ".join(METHODS)}')
    mu1, sigma1 = checked_statistics(mu1, sigma1, 'first statistics')
    mu2, sigma2 = checked_statistics(mu2, sigma2, 'second statistics')
    if mu1.shape != mu2.shape:
        raise StatisticsError(f'feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]} '
                              '(statistics from different detectors?)')
    return float(np.square(mu1 - mu2).sum() + _COVARIANCE_TERM[method](sigma1, sigma2))
