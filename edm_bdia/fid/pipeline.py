"""The one FID pipeline: uint8 images -> detector features -> float64 statistics summed over ranks -> FID.

`fid.py calc` / `ref` feed it from an image source (`extract`), `generate.py --fid-ref` feeds it each generated
batch, quantised exactly as its PNG: both give the same statistics for the same images (up to the detector's float32
batch-composition rounding, ~1e-7 relative in mu and sigma).
"""

import torch

from edm_bdia.fid.frechet import DEFAULT_METHOD, frechet_distance
from edm_bdia.fid.stats import FeatureStats


def feature_dim(detector, device='cpu'):
    """Feature size of `detector`: its `feature_dim` attribute, else measured on one blank 16x16 image."""
    dim = getattr(detector, 'feature_dim', None)
    if dim is None:
        with torch.no_grad():
            dim = detector(torch.zeros(1, 3, 16, 16, dtype=torch.uint8, device=device), return_features=True).shape[1]
    return int(dim)


class FidPipeline:
    """Detector features of every image passed to `update`, accumulated in float64 on `device`."""

    def __init__(self, detector, device='cpu'):
        self.detector = detector
        self.device = torch.device(device)
        self.stats = FeatureStats(feature_dim(detector, self.device), device=self.device)

    @property
    def feature_dim(self):
        return self.stats.dim

    def update(self, images_uint8):
        """Add uint8 NCHW images (1 or 3 channels; grayscale is repeated to RGB, as EDM's fid.py does)."""
        images = images_uint8.to(self.device)
        if images.shape[1] == 1:
            images = images.repeat([1, 3, 1, 1])
        with torch.no_grad():
            self.stats.update(self.detector(images, return_features=True))

    def all_reduce(self):
        """Collective: sum the statistics over all ranks (a no-op in a single process)."""
        self.stats.all_reduce()

    def statistics(self):
        """(mu, sigma) of everything seen (on all ranks, after `all_reduce`), float64 numpy."""
        return self.stats.mean_cov()

    def distance(self, reference, method=DEFAULT_METHOD):
        """FID of everything seen against `reference` = (mu, sigma)."""
        return frechet_distance(*self.statistics(), *reference, method=method)


def open_pipeline(detector=None, device='cpu', trust_pickle_code=False):
    """(FidPipeline on every rank, the detector's identity dict), collective: rank 0 loads the detector first (it
    may download it), the other ranks then read it from the cache."""
    from edm_bdia import distributed
    from edm_bdia.fid.detector import load_detector_with_info

    with distributed.rank_zero_first():
        net, info = load_detector_with_info(detector, device=device, trust_pickle_code=trust_pickle_code)
    return FidPipeline(net, device), info


def pipeline_with_reference(reference, detector=None, device='cpu', trust_pickle_code=False):
    """(FidPipeline on every rank, reference (mu, sigma) on rank 0) for a streaming FID (collective): the detector
    as `open_pipeline` loads it, then the reference checked against the detector's feature size, so a wrong
    reference fails before any image is made."""
    from edm_bdia import distributed
    from edm_bdia.fid import refs

    pipeline, _ = open_pipeline(detector, device, trust_pickle_code)
    stats = None
    with distributed.all_ranks():
        if distributed.get_rank() == 0:
            stats = refs.load_checked_reference(reference, pipeline.feature_dim)
    return pipeline, stats
