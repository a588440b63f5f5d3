"""Invertible editing of real images with BDIA: the invert and edit jobs over the shared run layer (edm_bdia.runs),
sharded and resumable like generation (docs/editing.md).

* `invert_images(network, images, out, ...)` (invert): real images (a folder, .zip or .npz) -> their BDIA start
  pairs, written as one latents file;
* `edit_images(network, outdir, ...)` (edit): a latents file, or real images, regenerated under target labels ->
  PNG files;
* `round_trip`: the invertible sampler's settings (`EditSettings`), exact arithmetic and the tile both halves use;
* `latents`: the latents file format (the state pair, labels, settings, the network's sha256) and its checks;
* `sources`: real images as the float [-1, 1] tensors and labels a network takes.
"""

from edm_bdia.editing.edit import edit_images
from edm_bdia.editing.invert import invert_images
from edm_bdia.editing.latents import read_latents
from edm_bdia.editing.round_trip import EditSettings

__all__ = ['invert_images', 'edit_images', 'EditSettings', 'read_latents']
