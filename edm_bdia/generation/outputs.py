"""What a run writes: the output folder and file checks made before any work, the check that sampled images are
finite, and the collections assembled at the end from the PNGs in the output folder (grid image, npz archive).

The collections are read back from disk, so a resumed run (whose earlier images came from another process)
produces the same files as an uninterrupted one, and all ranks' images end up in seed order."""

import contextlib
import os

import numpy as np
import torch

from edm_bdia import distributed
from edm_bdia.errors import ArgumentError
from edm_bdia.files import check_writable_file, probe_write, remove_stale_temp_files
from edm_bdia.generation.inputs import class_indices
from edm_bdia.generation.manifest import release_outdir
from edm_bdia.generation.seeds import image_path
from edm_bdia.files.images import read_png, save_grid, save_npz

GRID_IMAGES = 64


class NonFiniteImagesError(ValueError):
    """The sampler produced NaN or infinite values: nothing is written for those images."""


def check_finite(images, names):
    """NonFiniteImagesError naming the images (`names`, one per image) with NaN or infinite values."""
    finite = torch.isfinite(images.flatten(1)).all(dim=1)
    if not finite.all():
        bad = [name for name, ok in zip(names, finite.tolist()) if not ok]
        raise NonFiniteImagesError(f'sampling gave NaN or infinite values for {", ".join(map(str, bad[:10]))}'
                                   f'{" ..." if len(bad) > 10 else ""}; check the sampler settings (noise levels, '
                                   'S_noise, gamma) and the network')


def check_outdir(outdir, argument='outdir'):
    """Create `outdir`, prove it is writable and remove temporary files left by a killed run; ArgumentError naming
    `argument` otherwise."""
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise ArgumentError(argument, f'{outdir} is a file, not a folder; choose a folder')
    try:
        os.makedirs(outdir, exist_ok=True)
        probe_write(outdir)
    except OSError as exc:
        raise ArgumentError(argument, f'{outdir} is not writable ({exc.strerror or exc}); choose another folder') \
            from None
    remove_stale_temp_files(outdir)


def check_outputs(outdir, grid=None, npz=None):
    """The collection files and the image folder can be written (checked before any sampling; the folder is
    created last, so that a bad `grid` or `npz` leaves nothing behind)."""
    for path, argument in ((grid, 'grid'), (npz, 'npz')):
        if path:
            check_writable_file(path, argument)
    check_outdir(outdir)


@contextlib.contextmanager
def claimed(outdir, claim, fresh):
    """Run a block that writes into `outdir` once rank 0 has claimed it with `claim()` (`claim_outdir`: True when
    this run wrote the manifest). If the block fails and this run claimed the folder, rank 0 gives it back once
    every rank has stopped, provided nothing else was written: the manifest and its lock go, and the folder too if
    the run created it (`fresh`). A folder another run claimed is never touched. Without a folder (`outdir`
    None) the block just runs."""
    claimed_here = distributed.on_rank_zero(claim) if outdir is not None else False
    try:
        yield
    except BaseException as error:
        # A RankFailure stops every rank at the same point; any other error only counts in a single process.
        if isinstance(error, distributed.RankFailure) or distributed.get_world_size() == 1:
            distributed.barrier()  # every rank's writes are finished
            if claimed_here:
                with contextlib.suppress(OSError):
                    release_outdir(outdir, remove_folder=fresh)
        raise


def has_png(outdir):
    """True if `outdir` or one of its subfolders holds a .png file."""
    return any(name.endswith('.png') for _root, _dirs, files in os.walk(outdir) for name in files)


def read_images(outdir, seeds, subdirs):
    return np.stack([read_png(image_path(outdir, seed, subdirs)) for seed in seeds])


def write_collections(outdir, seeds, subdirs, grid, npz, net, device, class_idx):
    """Write `grid` (first 64 seeds) and `npz` (all seeds, with class labels for conditional nets), if given; their
    folders are created now (`check_outputs` created nothing)."""
    for path in (grid, npz):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if grid:
        save_grid(read_images(outdir, seeds[:GRID_IMAGES], subdirs), grid, GRID_IMAGES)
    if npz:
        save_npz(npz, read_images(outdir, seeds, subdirs), class_indices(net, seeds, device, class_idx))
