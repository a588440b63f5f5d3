"""Metrics while generating, without writing images: each batch, quantised exactly as its PNG, goes through every
detector of the metrics pipeline inside the batch's failure handling, and the float64 sums are all-reduced once at
the end. The result equals writing the PNGs and running `fid.py calc` / `calculate_metrics.py calc` on them
(docs/fid.md, 'Streaming metrics from generate.py')."""

from edm_bdia import distributed
from edm_bdia.fid.pipeline import pipeline_with_reference
from edm_bdia.generation.engine import generate_images


def generated_metrics(network, seeds, reference, *, metrics=('fid',), detector=None, dinov2=None, precision='fp32',
                      resize_mode='torch', device='auto', trust_pickle_code=False, progress=False, log=None,
                      **generate_options):
    """Collective: {metric: value} for the images of `seeds` against the reference statistics `reference` (a
    fid_refs name, .npz/.pkl path or URL), on rank 0; None on the other ranks. `metrics`: 'fid' (NVIDIA's
    Inception, `detector`) and / or 'fd_dinov2' (DINOv2 ViT-L/14, `dinov2`, with `precision` and `resize_mode`).
    The reference and the detectors are loaded and checked first, so a bad one fails before any image is made.
    log(message): NVlabs' progress lines, on every rank (default: printed on rank 0 with `progress`).
    generate_options: those of `generate_images` (sampler, outdir, ...)."""
    device = distributed.init(device)
    if log is None and progress:
        log = distributed.print0
    pipeline, references = pipeline_with_reference(reference, metrics, device, log=log, detector=detector,
                                                   dinov2=dinov2, trust_pickle_code=trust_pickle_code,
                                                   precision=precision, resize_mode=resize_mode)

    def add_to_metrics(batch):
        pipeline.update(batch.images)

    for _ in generate_images(network, seeds, device=device, trust_pickle_code=trust_pickle_code,
                             consume=add_to_metrics, progress=progress, **generate_options):
        pass
    pipeline.all_reduce()
    return pipeline.distances(references) if distributed.get_rank() == 0 else None


def generated_fid(network, seeds, reference, **options):
    """Collective: the FID alone (see generated_metrics), a float on rank 0, None on the other ranks."""
    values = generated_metrics(network, seeds, reference, metrics=('fid',), **options)
    return None if values is None else values['fid']
