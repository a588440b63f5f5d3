"""Crash-safe file writing and content hashes, shared by images, manifests, reference statistics and downloads.

Every file is written under a temporary name in the destination folder and renamed over the final name
(`os.replace`, atomic on POSIX), so a killed process never leaves a truncated file behind.
"""

import hashlib
import os
import threading

from edm_bdia.errors import ArgumentError

TEMP_SUFFIX = '.edm-bdia-tmp'  # temporary files end with this; `remove_stale_temp_files` cleans them up


def _temp_path(path):
    head, tail = os.path.split(path)
    return os.path.join(head, f'.{tail}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}')


def atomic_write(path, write):
    """Call write(file_object) on a temporary file next to `path`, then rename it to `path`. An OSError that names
    no file (a full disk: `[Errno 28] No space left on device`) is raised naming `path`."""
    temp = _temp_path(path)
    try:
        with open(temp, 'wb') as f:
            write(f)
        os.replace(temp, path)
    except BaseException as error:
        if os.path.exists(temp):
            os.remove(temp)
        if isinstance(error, OSError) and error.errno is not None and not error.filename:
            raise OSError(error.errno, error.strerror, os.fspath(path)) from None
        raise


def remove_stale_temp_files(folder):
    """Delete temporary files that a killed run left in `folder` and its subfolders."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.startswith('.') and name.endswith(TEMP_SUFFIX):
                try:
                    os.remove(os.path.join(root, name))
                except FileNotFoundError:
                    pass  # another rank on a shared filesystem removed it first


def sha256_file(path, chunk_size=1 << 20):
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def probe_write(folder):
    """Create and remove a temporary file in `folder`: OSError when files cannot be created there."""
    probe = _temp_path(os.path.join(folder, 'write-probe'))
    with open(probe, 'wb'):
        pass
    os.remove(probe)


def check_writable_file(path, argument):
    """Make sure `path` can be written later, without creating anything now (a failed run leaves no folder behind):
    ArgumentError naming `argument` if it is a folder, or if its nearest existing folder is a file or takes no new
    files. The writer creates the missing folders when it writes."""
    if os.path.isdir(path):
        raise ArgumentError(argument, f'{path} is a folder; give a file name')
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ArgumentError(argument, f'{path} cannot be written ({existing} is a file, not a folder); choose another '
                                      'place')
    try:
        probe_write(existing)
    except OSError as exc:
        raise ArgumentError(argument, f'{path} cannot be written ({exc.strerror or exc}); choose another place') \
            from None
