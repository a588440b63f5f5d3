"""Where a network comes from (docs/checkpoints.md).

* `source`: a preset name, path, file:// or http(s) URL resolved once into a `Checkpoint`, which loads the network
  (and its encoder) and knows its file's sha256 from the same read (`resolve_checkpoint`, `load_network`,
  `load_network_and_encoder`, `load_pickle`);
* `presets`: the published NVlabs EDM and EDM2 checkpoints and the built-in model, with their sampler settings,
  guidance and FID reference statistics (`PRESETS`);
* `download`: `open_url` and the download cache shared with NVlabs' dnnlib; offline switch $EDM_BDIA_OFFLINE;
* `unpickle`: safe (no code runs) and trusted reading of NVlabs persistence pickles;
* `sampler_interface`: the noise-range interface for stored EDM2 code that lacks it (`ContinuousNoiseLevels`);
* `restricted`: the allow-list unpickler underneath, shared with the FID detector and statistics readers;
* `hashing`: sha256 of a file while it is read, or of a module's tensors (`sha256_state`);

Names are imported lazily, so `import edm_bdia.checkpoints.presets` stays cheap (no torch).
"""

_LAZY = {
    'Checkpoint': 'source', 'resolve_checkpoint': 'source', 'load_network': 'source', 'load_pickle': 'source',
    'load_network_and_encoder': 'source', 'ContinuousNoiseLevels': 'sampler_interface',
    'PRESETS': 'presets', 'Preset': 'presets',
    'open_url': 'download', 'DownloadError': 'download',
    'PickleLoadError': 'unpickle', 'InertPersistentObject': 'unpickle',
    'sha256_state': 'hashing',
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
