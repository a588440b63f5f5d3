"""FID while generating (--fid-ref): each batch, quantised exactly as its PNG (`to_uint8`), goes straight to the
Inception detector; per-rank float64 feature sums are all-reduced once at the end (edm-format.md §4.4), so no PNG
has to be written or read back. Gives the FID that `edm-bdia-fid calc` computes on the same images (up to the
detector's float32 batch-composition rounding, ~1e-7 relative in mu and sigma)."""

import torch

from edm_bdia.fid import detector as fid_detector
from edm_bdia.fid import refs
from edm_bdia.fid.extract import feature_dim
from edm_bdia.fid.frechet import frechet_distance
from edm_bdia.fid.stats import FeatureStats


class StreamingFid:
    """Detector features of every image passed to `update`, then the Fréchet distance to `reference`."""

    def __init__(self, reference, detector=None, device='cpu', trust_pickle_code=False):
        self.reference_source = reference
        self.device = torch.device(device)
        self.detector = fid_detector.load_detector(detector, device=self.device,
                                                   trust_pickle_code=trust_pickle_code)
        self.stats = FeatureStats(feature_dim(self.detector, self.device), device=self.device)
        self.reference = None

    def load_reference(self):
        """(mu, sigma) of the reference; call on the rank that computes the distance, before generating."""
        try:
            self.reference = refs.load_reference(self.reference_source)
        except refs.ReferenceStatsError as exc:  # its message names fid.py's option; here the option is --fid-ref
            message = str(exc)
            raise refs.ReferenceStatsError('--fid-' + message[2:] if message.startswith('--ref ') else message) \
                from None

    def update(self, images_uint8):
        """Add uint8 NCHW images (1 or 3 channels; grayscale is repeated to RGB as EDM's fid.py does)."""
        images = images_uint8.to(self.device)
        if images.shape[1] == 1:
            images = images.repeat([1, 3, 1, 1])
        with torch.no_grad():
            self.stats.update(self.detector(images, return_features=True))

    def all_reduce(self):
        """Collective: sum the statistics over all ranks."""
        self.stats.all_reduce()

    def distance(self):
        """FID of everything seen on all ranks (after `all_reduce`) against the reference."""
        mu, sigma = self.stats.mean_cov()
        return frechet_distance(mu, sigma, *self.reference)
