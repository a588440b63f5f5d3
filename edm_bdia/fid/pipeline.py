"""The one metrics pipeline: uint8 images -> each metric's detector features -> float64 statistics summed over
ranks -> Fréchet distances.

Every image goes through every detector of the pipeline in the same pass: one image source (one data loader or one
generated batch), one transfer to the device, then Inception and DINOv2 side by side. `fid.py`,
`calculate_metrics.py` (through `extract`) and `generate.py --fid-ref` all feed it; they give the same statistics
for the same images (up to the detectors' float32 batch-composition rounding, ~1e-7 relative in mu and sigma).
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


class MetricsPipeline:
    """Features of every image passed to `update`, from each detector of `detectors` ({metric: detector}),
    accumulated per metric in float64 on `device`."""

    def __init__(self, detectors, device='cpu'):
        self.detectors = dict(detectors)
        self.device = torch.device(device)
        self.stats = {metric: FeatureStats(feature_dim(detector, self.device), device=self.device)
                      for metric, detector in self.detectors.items()}

    @property
    def metrics(self):
        return tuple(self.detectors)

    @property
    def feature_dims(self):
        return {metric: stats.dim for metric, stats in self.stats.items()}

    def update(self, images_uint8):
        """Add uint8 NCHW images (1 or 3 channels; grayscale is repeated to RGB, as EDM's fid.py does)."""
        images = images_uint8.to(self.device)
        if images.shape[1] == 1:
            images = images.repeat([1, 3, 1, 1])
        with torch.no_grad():
            for metric, detector in self.detectors.items():
                self.stats[metric].update(detector(images, return_features=True))

    def all_reduce(self):
        """Collective: sum the statistics over all ranks (a no-op in a single process)."""
        for stats in self.stats.values():
            stats.all_reduce()

    @property
    def num_images(self):
        return next(iter(self.stats.values())).count

    def statistics(self):
        """{metric: (mu, sigma)} of everything seen (on all ranks, after `all_reduce`), float64 numpy."""
        return {metric: stats.mean_cov() for metric, stats in self.stats.items()}

    def distances(self, references, method=DEFAULT_METHOD):
        """{metric: Fréchet distance} of everything seen against `references` = {metric: (mu, sigma)}."""
        return {metric: frechet_distance(mu, sigma, *references[metric], method=method)
                for metric, (mu, sigma) in self.statistics().items()}


def open_pipeline(metrics=('fid',), device='cpu', *, log=None, **detector_options):
    """Collective: (MetricsPipeline on every rank, {metric: detector identity}); detector_options and log as
    edm_bdia.fid.metrics.open_detectors takes them."""
    from edm_bdia.fid.metrics import open_detectors

    detectors, infos = open_detectors(metrics, device, log=log, **detector_options)
    return MetricsPipeline(detectors, device), infos


def references_on_rank_zero(reference, metrics, log=None):
    """Collective: the reference statistics {metric: (mu, sigma)} of `metrics` read by rank 0 (NVlabs announces
    it: "Loading feature statistics from ..."), None on the other ranks; a failure is reported on every rank."""
    from edm_bdia import distributed
    from edm_bdia.fid import refs

    references = None
    with distributed.all_ranks():
        if distributed.get_rank() == 0:
            if log is not None:
                log(f'Loading feature statistics from {reference} ...')
            references = refs.load_references(reference, metrics)
    return references


def check_reference_dims(references, pipeline, source):
    """Collective: on rank 0, fail unless `references` have the feature sizes of the pipeline's detectors."""
    from edm_bdia import distributed
    from edm_bdia.fid import refs

    with distributed.all_ranks():
        if references is not None:
            refs.check_feature_dims(references, pipeline.feature_dims, source)


def pipeline_with_reference(reference, metrics=('fid',), device='cpu', *, log=None, **detector_options):
    """Collective, for a streaming metric: (MetricsPipeline on every rank, the references {metric: (mu, sigma)} on
    rank 0, else None). The reference is read before the detectors are loaded and checked against their feature
    sizes after, so a wrong one fails before any image is made."""
    from edm_bdia.fid.metrics import parse_metrics

    metrics = parse_metrics(metrics)
    references = references_on_rank_zero(reference, metrics, log)
    pipeline, _ = open_pipeline(metrics, device, log=log, **detector_options)
    check_reference_dims(references, pipeline, reference)
    return pipeline, references
