"""Invertible editing of real images with BDIA, sharded and resumable like generation (docs/editing.md).

* `invert_images(network, images, ...)`: real images (a folder, .zip or .npz) -> their BDIA start pairs, written as
  one latents file (`latents`);
* `edit_images(network, ...)`: a latents file, or real images, regenerated under target labels -> PNG files;
* `latents`: the latents file format (the state pair, labels, settings, the network's sha256) and its checks;
* `sources`: real images as the float [-1, 1] tensors and labels a network takes.
"""

from edm_bdia.editing.latents import read_latents
from edm_bdia.editing.runs import EditSettings, edit_images, invert_images

__all__ = ['invert_images', 'edit_images', 'EditSettings', 'read_latents']
