"""Inception features and FIDs of digit images through this package's own FID pieces: NVIDIA's Inception detector
(edm_bdia.fid.detector), float64 feature statistics (edm_bdia.fid.stats) and the reference's covariance factor
(edm_bdia.fid.frechet.psd_factor). Images are quantised as their PNGs would be and repeated to RGB, as `fid.py` does.

`FidReference.fid` is `edm_bdia.fid.frechet.frechet_distance` rearranged for a few hundred images against a fixed
reference, at a fraction of its cost (hundreds of FIDs per run). For any factors L1 L1^T = sigma1 and
L2 L2^T = sigma2, tr sqrt(sigma1^(1/2) sigma2 sigma1^(1/2)) is the nuclear norm of L2^T L1 (the singular values of
L2^T L1 are the square roots of the eigenvalues of L1^T sigma2 L1, whose nonzero ones are those of
sigma2^(1/2) sigma1 sigma2^(1/2)). With L2 the reference's factor, computed once, and L1 the n centred features
over sqrt(n - 1), each FID costs one [2048 x 2048] x [2048 x n] product and the SVD of a [2048 x n] matrix instead of
two 2048 eigendecompositions and a 2048 SVD; and with fewer images than features it is the more exact of the two
(frechet_distance factors the singular sample covariance by an eigendecomposition, whose clipped rounding-noise
eigenvalues leave ~1e-8 relative). tests/test_digits_benchmarks.py checks it against frechet_distance.
"""

import hashlib
import os

import numpy as np
import torch

from edm_bdia.fid.detector import load_detector
from edm_bdia.fid.frechet import psd_factor
from edm_bdia.fid.stats import FeatureStats
from edm_bdia.files.images import to_uint8


class DigitFeatures:
    """The Inception detector, loaded once; `features(images)` for float images in [-1, 1]."""

    def __init__(self, batch=50):
        self.detector = load_detector()
        self.batch = batch

    def features(self, images):
        """float32 [n, 2048] Inception features of float images [n, 1, R, R] in [-1, 1]."""
        rgb = to_uint8(images).repeat([1, 3, 1, 1])
        with torch.no_grad():
            return torch.cat([self.detector(rgb[i:i + self.batch], return_features=True)
                              for i in range(0, len(rgb), self.batch)])

    def cached_features(self, images, folder):
        """`features(images)`, kept in `folder` under the sha256 of the quantised images (the reference digits'
        features are the same for every run)."""
        key = hashlib.sha256(to_uint8(images).numpy().tobytes()).hexdigest()[:16]
        path = os.path.join(folder, f'digits-inception-features-{key}.pt')
        if os.path.isfile(path):
            return torch.load(path, weights_only=True)
        features = self.features(images)
        os.makedirs(folder, exist_ok=True)
        torch.save(features, f'{path}.tmp{os.getpid()}')
        os.replace(f'{path}.tmp{os.getpid()}', path)
        return features


def statistics(features):
    """(mu, sigma) of Inception features [n, 2048], float64 numpy, unbiased covariance (edm_bdia.fid.stats)."""
    stats = FeatureStats(features.shape[1])
    stats.update(features)
    return stats.mean_cov()


class FidReference:
    """Reference statistics (mu, sigma) with sigma's factor computed once; `fid(features)` of a set of images."""

    def __init__(self, mu, sigma):
        self.mu, self.trace = mu, float(np.trace(sigma))
        self.factor = psd_factor(sigma)

    @classmethod
    def of(cls, features):
        return cls(*statistics(features))

    def fid(self, features):
        """FID of the features [n, 2048] (n >= 2) against this reference."""
        mu, _ = statistics(features)
        centred = features.double().numpy() - mu
        sample_factor = centred.T / np.sqrt(len(centred) - 1)
        cross = np.linalg.svd(self.factor.T @ sample_factor, compute_uv=False).sum()
        return float(np.square(mu - self.mu).sum() + np.square(sample_factor).sum() + self.trace - 2 * cross)
