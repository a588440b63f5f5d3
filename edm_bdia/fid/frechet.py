"""Frechet distance between Gaussians N(mu1, sigma1), N(mu2, sigma2) in float64 (fid.md §3).

FID = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2). The trace term is computed from
symmetric forms, so the result is real and finite by construction:

* ``eigh`` (default): R = sigma1^(1/2); tr sqrt(sigma1 sigma2) = sum sqrt(eig(R sigma2 R)), eigenvalues clipped at 0.
* ``svd``: tr sqrt(sigma1 sigma2) = nuclear norm of sigma2^(1/2) sigma1^(1/2) (most accurate, about 2x the cost).
* ``scipy``: EDM's formula, trace of ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` (real part), for cross-checks.
  ``disp`` is never passed (removed in SciPy 1.18), and SciPy 1.11.2-1.12.x (garbage on ill-conditioned input) is
  refused.
"""

import numpy as np

from edm_bdia.fid.errors import FidError

METHODS = ('eigh', 'svd', 'scipy')


class FrechetError(FidError):
    """Statistics that cannot be compared, or a method that cannot give a trustworthy value."""


def psd_sqrt(sigma):
    """Symmetric square root of a PSD matrix; tiny negative eigenvalues from rounding are clipped to 0."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _trace_sqrt_eigh(sigma1, sigma2):
    r = psd_sqrt(sigma1)
    m = r @ sigma2 @ r
    m = (m + m.T) / 2  # similar to sigma1 sigma2, symmetric up to rounding
    return np.sqrt(np.clip(np.linalg.eigvalsh(m), 0, None)).sum()


def _trace_sqrt_svd(sigma1, sigma2):
    return np.linalg.svd(psd_sqrt(sigma2) @ psd_sqrt(sigma1), compute_uv=False).sum()


def _trace_sqrt_scipy(sigma1, sigma2):
    import scipy
    import scipy.linalg
    version = tuple(int(part) for part in scipy.__version__.split('.')[:3] if part.isdigit())
    if (1, 11, 2) <= version < (1, 13):
        raise FrechetError(f'--fd-method scipy: SciPy {scipy.__version__} has a broken sqrtm (SciPy 1.11.2-1.12.x '
                           'return garbage for ill-conditioned input); upgrade SciPy or use --fd-method eigh')
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    trace = np.trace(root)
    if not np.isfinite(trace):
        raise FrechetError('--fd-method scipy: sqrtm returned a non-finite matrix; use --fd-method eigh or svd')
    return float(np.real(trace))


_TRACE_SQRT = {'eigh': _trace_sqrt_eigh, 'svd': _trace_sqrt_svd, 'scipy': _trace_sqrt_scipy}


def _validated(mu, sigma, which):
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise FrechetError(f'{which} statistics: mu must be [D] and sigma [D, D], got {mu.shape} and {sigma.shape}')
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise FrechetError(f'{which} statistics contain NaN or infinity')
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2, method='eigh') -> float:
    """FID between two sets of statistics, a Python float (may be a tiny negative number for identical inputs)."""
    if method not in _TRACE_SQRT:
        raise FrechetError(f'unknown Frechet distance method {method!r}; choose one of {", ".join(METHODS)}')
    mu1, sigma1 = _validated(mu1, sigma1, 'first')
    mu2, sigma2 = _validated(mu2, sigma2, 'second')
    if mu1.shape != mu2.shape:
        raise FrechetError(f'feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]} '
                           '(statistics from different detectors?)')
    mean_term = np.square(mu1 - mu2).sum()
    # fid.md §3.1: FID = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2)
    fid = mean_term + np.trace(sigma1) + np.trace(sigma2) - 2 * _TRACE_SQRT[method](sigma1, sigma2)
    return float(fid)
