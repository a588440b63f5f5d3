"""FID while generating, without writing images: each batch, quantised exactly as its PNG, goes to the FID pipeline
inside the batch's failure handling, and the float64 sums are all-reduced once at the end. The result equals
writing the PNGs and running `fid.py calc` on them (docs/fid.md)."""

from edm_bdia import distributed
from edm_bdia.fid.pipeline import pipeline_with_reference
from edm_bdia.generation.engine import generate_images


def generated_fid(network, seeds, reference, *, detector=None, device='auto', trust_pickle_code=False,
                  progress=False, **generate_options):
    """Collective: the FID of the images of `seeds` against the reference statistics `reference` (a fid_refs name,
    .npz path or URL) with `detector` (default NVIDIA's Inception), on rank 0; None on the other ranks. The
    detector and the reference are loaded and checked first, so a bad one fails before any image is made.
    generate_options: those of `generate_images` (sampler, outdir, ...)."""
    device = distributed.init(device)
    if progress:
        distributed.print0(f'Loading the FID detector and reference statistics "{reference}"...')
    pipeline, statistics = pipeline_with_reference(reference, detector, device, trust_pickle_code)

    def add_to_fid(batch):
        pipeline.update(batch.images)

    for _ in generate_images(network, seeds, device=device, trust_pickle_code=trust_pickle_code, consume=add_to_fid,
                             progress=progress, **generate_options):
        pass
    pipeline.all_reduce()
    return pipeline.distance(statistics) if distributed.get_rank() == 0 else None
