"""The output folder of a run: checked and created before any work, claimed with the run's manifest (rank 0, under
a lock, refusing a folder made with other settings), and given back when the run fails before writing anything."""

import contextlib
import os

from edm_bdia import distributed
from edm_bdia.errors import ArgumentError
from edm_bdia.files import probe_write, remove_stale_temp_files
from edm_bdia.runs.manifest import claim_outdir, release_outdir


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


def prepare_folder(folder, argument='outdir'):
    """Collective: `check_outdir` on every rank; True if the folder did not exist before (a run that fails early
    removes it again)."""
    with distributed.all_ranks():
        fresh = not os.path.exists(folder)
    with distributed.all_ranks():  # every rank has looked before any rank creates it
        check_outdir(folder, argument)
    return fresh


def holds_files(folder, suffix):
    """True if `folder` or one of its subfolders holds a file whose name ends with `suffix` ('.png')."""
    return any(name.endswith(suffix) for _root, _dirs, files in os.walk(folder) for name in files)


@contextlib.contextmanager
def claimed(folder, manifest, *, fresh, resume, suffix='.png', argument='outdir'):
    """Collective: run a block that writes into `folder` once rank 0 has claimed it for `manifest` (`claim_outdir`;
    files ending with `suffix` are the run's outputs, for the check that a resumed folder has a manifest). If the
    block fails and this run wrote the manifest, rank 0 gives the folder back once every rank has stopped,
    provided nothing else was written: the manifest and its lock go, and the folder too if the run created it
    (`fresh`). A folder another run claimed is never touched. Without a folder (None) the block just runs."""
    with distributed.all_ranks():
        claimed_here = folder is not None and distributed.get_rank() == 0 and claim_outdir(
            folder, manifest, resume, holds_files(folder, suffix), argument)
    try:
        yield
    except BaseException as error:
        # A RankFailure stops every rank at the same point; any other error only counts in a single process.
        if isinstance(error, distributed.RankFailure) or distributed.get_world_size() == 1:
            distributed.barrier()  # every rank's writes are finished
            if claimed_here:
                with contextlib.suppress(OSError):
                    release_outdir(folder, remove_folder=fresh)
        raise
