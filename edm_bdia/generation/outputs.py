"""Collections assembled after generation from the PNGs in the output folder: grid image and npz archive.

They are read back from disk, so a resumed run (whose earlier images came from another process) produces the
same files as an uninterrupted one, and all ranks' images end up in seed order."""

import os

import numpy as np

from edm_bdia.generation.inputs import class_indices
from edm_bdia.generation.seeds import image_path
from edm_bdia.files.images import read_png, save_grid, save_npz

GRID_IMAGES = 64


def has_png(outdir):
    """True if `outdir` or one of its subfolders holds a .png file."""
    return any(name.endswith('.png') for _root, _dirs, files in os.walk(outdir) for name in files)


def read_images(outdir, seeds, subdirs):
    return np.stack([read_png(image_path(outdir, seed, subdirs)) for seed in seeds])


def write_collections(outdir, seeds, subdirs, grid, npz, net, device, class_idx):
    """Write `grid` (first 64 seeds) and `npz` (all seeds, with class labels for conditional nets), if given."""
    if grid:
        save_grid(read_images(outdir, seeds[:GRID_IMAGES], subdirs), grid, GRID_IMAGES)
    if npz:
        save_npz(npz, read_images(outdir, seeds, subdirs), class_indices(net, seeds, device, class_idx))
