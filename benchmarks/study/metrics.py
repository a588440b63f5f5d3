"""Numbers the study reports: errors, stability and a distribution distance."""

import torch


def rms(a, b):
    """Root mean square of a - b over every pixel of every image."""
    return ((a - b) ** 2).mean().sqrt().item()


def median_rms(a, b):
    """The median over samples of each sample's RMS error: what a typical sample sees, where one sample that lands
    in another mode than the reference can dominate `rms`."""
    return ((a - b) ** 2).flatten(1).mean(1).sqrt().median().item()


def relative_max_error(a, b):
    """max |a - b| / max |b|."""
    return ((a - b).abs().max() / b.abs().max()).item()


def max_abs(x):
    """max |x|, inf when anything is not finite."""
    return x.abs().max().item() if bool(torch.isfinite(x).all()) else float('inf')


def pixel_frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two image sets in pixel space (flattened)."""
    a, b = a.reshape(len(a), -1).to(torch.float64), b.reshape(len(b), -1).to(torch.float64)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # tr sqrt(cov_a cov_b) = sum of sqrt(eigenvalues) of the symmetric PSD matrix sqrt(cov_a) cov_b sqrt(cov_a)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


