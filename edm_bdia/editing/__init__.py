"""Invertible editing of real images with BDIA, sharded and resumable like generation (docs/editing.md).

* `invert_images(network, images, ...)`: real images (a folder, .zip or .npz) -> their BDIA start pairs, written as
  one latents file (`latents`);
* `edit_images(network, ...)`: a latents file, or real images, regenerated under target labels -> PNG files;
* `latents`: the latents file format (the state pair, labels, settings, the network's sha256) and its checks;
* `sources`: real images as the float [-1, 1] tensors and labels a network takes.
"""

_LAZY = {'invert_images': 'edm_bdia.editing.runs', 'edit_images': 'edm_bdia.editing.runs',
         'EditSettings': 'edm_bdia.editing.runs', 'read_latents': 'edm_bdia.editing.latents'}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
