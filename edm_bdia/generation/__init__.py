"""The generate job: `generate_images(network, seeds, ...)` yields per-batch results (engine) and
`generated_metrics(network, seeds, reference, ...)` / `generated_fid` stream them into FID and FD_DINOv2 (fid);
NVlabs' sampler routing of generate.py and of edm2's generate_images.py (`choose_sampler`, `choose_edm2_sampler`,
sampler), lazy seed lists (seeds), per-seed inputs (inputs), the padding note (padding) and the
grid / npz collections read back from the PNGs (collections). What every run shares (runtime, manifest, writer,
output folder, lockstep batches) is edm_bdia.runs. Importing this package is cheap: torch loads on first use."""

_LAZY = {'generate_images': 'edm_bdia.generation.engine', 'GeneratedBatch': 'edm_bdia.generation.engine',
         'generated_fid': 'edm_bdia.generation.fid', 'generated_metrics': 'edm_bdia.generation.fid',
         'choose_sampler': 'edm_bdia.generation.sampler', 'choose_edm2_sampler': 'edm_bdia.generation.sampler',
         'parse_seeds': 'edm_bdia.generation.seeds', 'write_collections': 'edm_bdia.generation.collections'}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
