"""edm_bdia: EDM and BDIA samplers for NVlabs EDM and EDM2 checkpoints, sharded generation and FID.

`load_network`, `load_network_and_encoder`, `load_pickle` and `open_url` (from edm_bdia.checkpoints) are imported
lazily, so `import edm_bdia` stays cheap.
"""

__version__ = '0.1.0'

_LAZY = {'load_network': 'edm_bdia.checkpoints.source', 'load_pickle': 'edm_bdia.checkpoints.source',
         'load_network_and_encoder': 'edm_bdia.checkpoints.source',
         'open_url': 'edm_bdia.checkpoints.download'}

__all__ = ['__version__', *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
