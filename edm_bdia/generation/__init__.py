"""The generation engine: `generate_images(network, seeds, ...)` yields per-batch results (engine), NVlabs' sampler
routing (`choose_sampler`, sampler), lazy seed lists (seeds), per-seed inputs (inputs), the network and its
identity (network), background PNG writing (writer), the output folder's manifest (manifest) and the grid / npz
collections read back from the PNGs (outputs). Importing this package is cheap: torch loads on first use."""

_LAZY = {'generate_images': 'edm_bdia.generation.engine', 'GeneratedBatch': 'edm_bdia.generation.engine',
         'choose_sampler': 'edm_bdia.generation.sampler', 'SamplerSettings': 'edm_bdia.generation.sampler',
         'parse_seeds': 'edm_bdia.generation.seeds', 'write_collections': 'edm_bdia.generation.outputs'}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
