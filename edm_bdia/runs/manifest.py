"""The manifest in an output folder: which settings, network and package version made its images.

A resumed run (and a plain rerun) only adds images to a folder whose manifest matches the current run, so one
folder never mixes images from different settings. The manifest holds only what determines the images (not the batch
size or process count, which do not change them), so a resumed run leaves it byte-identical.
"""

import json
import math
import os

from edm_bdia.errors import ArgumentError
from edm_bdia.files import atomic_write
from edm_bdia.files.lock import locked

MANIFEST_NAME = 'edm_bdia_manifest.json'
LOCK_NAME = '.edm_bdia_manifest.lock'


def jsonable(value):
    """`value` with every non-finite float as a string ('inf'): strict JSON has no Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def _identity(manifest):
    """The parts that must match: everything except the network's spelling (a path may be written differently)."""
    identity = dict(manifest)
    identity['network'] = dict(manifest.get('network', {}), source=None)
    return identity


def differences(old, new):
    """Human-readable 'key: old -> new' for every mismatching top-level setting."""
    old, new = _identity(old), _identity(new)
    return [f'{key}: {old.get(key)!r} -> {new.get(key)!r}' for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


class ManifestError(ArgumentError):
    """The output folder's manifest forbids this run (other settings, unknown images) or cannot be read; names
    the argument that gave the folder."""


def read_manifest(outdir, argument='outdir'):
    path = os.path.join(outdir, MANIFEST_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path, 'r', encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ManifestError(argument, f'{outdir}: cannot read {MANIFEST_NAME} ({exc}); use a new folder') from None


def write_manifest(outdir, manifest):
    text = json.dumps(manifest, indent=2) + '\n'
    atomic_write(os.path.join(outdir, MANIFEST_NAME), lambda f: f.write(text.encode('utf-8')))


def _check_claim(outdir, manifest, resume, has_images, argument):
    """Raise ManifestError if this run may not use `outdir`; return whether the folder still needs a manifest."""
    existing = read_manifest(outdir, argument)
    if existing is not None:
        diff = differences(existing, manifest)
        if diff:
            raise ManifestError(argument, f'{outdir} holds images made with different settings ({"; ".join(diff)}); '
                                          'use a new folder or rerun with the original settings')
        return False
    if resume and has_images:
        raise ManifestError(argument, f'{outdir} has images but no {MANIFEST_NAME}, so their settings are unknown; '
                                      'use a new folder, or rerun without resume to overwrite them')
    return True


def claim_outdir(outdir, manifest, resume, has_images, argument='outdir'):
    """Check `outdir` against the current run's manifest and record it, under a lock, so that two runs racing on
    one folder cannot both claim it; True when this run wrote the manifest. Refuses a folder made with different
    settings, and a resume into a folder that has images but no manifest (their settings are unknown); a refusal
    is found before the lock is taken, so a refused folder gets no lock file. `argument` names the folder's
    argument in errors."""
    if not _check_claim(outdir, manifest, resume, has_images, argument):
        return False
    with locked(os.path.join(outdir, LOCK_NAME)):
        if not _check_claim(outdir, manifest, resume, has_images, argument):
            return False
        write_manifest(outdir, manifest)
        return True


def release_outdir(outdir, remove_folder):
    """Give back a folder this run claimed and wrote nothing else into (it failed early): remove the manifest and
    its lock, and the folder itself if `remove_folder`. A folder holding anything else is left as it is."""
    names = set(os.listdir(outdir))
    if not names <= {MANIFEST_NAME, LOCK_NAME}:
        return
    for name in names:
        os.remove(os.path.join(outdir, name))
    if remove_folder:
        os.rmdir(outdir)
