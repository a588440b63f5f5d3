"""The digits UNet benchmarks' own arithmetic (benchmarks/digits_unet/): the FID against a fixed reference,
rearranged for speed, against edm_bdia.fid.frechet.frechet_distance, and the 95 % intervals over seeds against
SciPy's Student's t."""

import numpy as np
import pytest
import scipy.stats
import torch

from benchmarks.digits_unet.features import FidReference, statistics
from benchmarks.digits_unet.ranking import T_975, mean_and_half_width
from edm_bdia.fid.frechet import frechet_distance


@pytest.mark.parametrize('samples, dim', [(12, 64), (200, 64)])  # fewer samples than features, and more
def test_fid_against_a_reference_equals_the_frechet_distance(samples, dim):
    generator = torch.Generator().manual_seed(samples)
    reference = torch.randn(150, dim, generator=generator).abs() * 2
    features = torch.randn(samples, dim, generator=generator).abs() * 2 + 0.3
    expected = frechet_distance(*statistics(features), *statistics(reference))
    # rel 1e-7: with fewer samples than features, frechet_distance factors the singular sample covariance by an
    # eigendecomposition, whose rounding-noise eigenvalues (~1e-15, clipped at 0) leave square roots of ~1e-8;
    # FidReference takes the centred features themselves as that factor
    tolerance = 1e-7 if samples < dim else 1e-9
    assert FidReference.of(reference).fid(features) == pytest.approx(expected, rel=tolerance)


def test_t_quantiles_and_interval():
    for dof, quantile in T_975.items():
        assert quantile == pytest.approx(scipy.stats.t.ppf(0.975, dof), abs=5e-4)
    values = [3.0, 5.0, 4.0]
    mean, half = mean_and_half_width(values)
    low, high = scipy.stats.t.interval(0.95, 2, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert (mean, half) == (pytest.approx(4.0), pytest.approx((high - low) / 2, rel=1e-4))
