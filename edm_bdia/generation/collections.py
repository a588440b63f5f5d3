"""The PNGs of a run's seeds read back from the output folder: a resumed batch, and the collections written at the
end (grid image, npz archive).

The collections are read back from disk, so a resumed run (whose earlier images came from another process)
produces the same files as an uninterrupted one, and all ranks' images end up in seed order."""

import os

import numpy as np

from edm_bdia.files import check_writable_file
from edm_bdia.files.images import read_png, save_grid, save_npz
from edm_bdia.generation.inputs import class_indices
from edm_bdia.generation.seeds import image_path

GRID_IMAGES = 64


def check_collection_paths(grid=None, npz=None):
    """The collection files can be written (checked before any sampling, without creating their folders)."""
    for path, argument in ((grid, 'grid'), (npz, 'npz')):
        if path:
            check_writable_file(path, argument)


def read_images(outdir, seeds, subdirs):
    return np.stack([read_png(image_path(outdir, seed, subdirs)) for seed in seeds])


def write_collections(outdir, seeds, subdirs, grid, npz, net, device, class_idx):
    """Write `grid` (first 64 seeds) and `npz` (all seeds, with class labels for conditional nets), if given; their
    folders are created now (`check_collection_paths` created nothing)."""
    for path in (grid, npz):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if grid:
        save_grid(read_images(outdir, seeds[:GRID_IMAGES], subdirs), grid, GRID_IMAGES)
    if npz:
        save_npz(npz, read_images(outdir, seeds, subdirs), class_indices(net, seeds, device, class_idx))
