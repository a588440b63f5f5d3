"""The PNGs of a run's seeds read back from the output folder: a resumed batch, and the collections written at the
end (grid image, npz archive).

The collections are read back from disk, so a resumed run (whose earlier images came from another process)
produces the same files as an uninterrupted one, and all ranks' images end up in seed order."""

import os
import re

import numpy as np

from edm_bdia.errors import ArgumentError
from edm_bdia.files import check_writable_file
from edm_bdia.files.images import read_png, save_grid, save_npz
from edm_bdia.generation.inputs import class_indices
from edm_bdia.generation.seeds import image_path
from edm_bdia.runs.manifest import LOCK_NAME, MANIFEST_NAME

GRID_IMAGES = 64


def check_collection_paths(outdir, grid=None, npz=None):
    """The collection files can be written and none of them is another output of the run (the other collection,
    an image file, the folder's manifest or lock); checked before any sampling, without creating their folders."""
    if grid and npz and os.path.realpath(grid) == os.path.realpath(npz):
        raise ArgumentError('npz', f'and `grid` are the same file {npz}; give them different paths')
    for path, argument in ((grid, 'grid'), (npz, 'npz')):
        if path:
            _check_not_an_output_of(outdir, path, argument)
            check_writable_file(path, argument)


IMAGE_NAME = re.compile(r'\d{6,}\.png')


def _check_not_an_output_of(outdir, path, argument):
    """`path` is not a name the run writes in `outdir`: an image ({seed:06d}.png, in the folder or a subdirectory
    of 1000 seeds), the manifest or its lock."""
    folder = os.path.realpath(outdir)
    parent, name = os.path.split(os.path.realpath(path))
    in_folder = parent == folder or (os.path.dirname(parent) == folder and os.path.basename(parent).isdigit())
    if in_folder and (IMAGE_NAME.fullmatch(name) or name in (MANIFEST_NAME, LOCK_NAME)):
        raise ArgumentError(argument, f'{path} is a file this run writes or owns in {outdir}; write it elsewhere (e.g. '
                                      'beside the image folder)')


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
