"""Crash-safe file writing and content hashes, shared by images, manifests, reference statistics and downloads.

Every file is written under a temporary name in the destination folder and renamed over the final name
(`os.replace`, atomic on POSIX), so a killed process never leaves a truncated file behind.
"""

import hashlib
import os
import threading

TEMP_SUFFIX = '.edm-bdia-tmp'  # temporary files end with this; `remove_stale_temp_files` cleans them up


def _temp_path(path):
    head, tail = os.path.split(path)
    return os.path.join(head, f'.{tail}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}')


def atomic_write(path, write):
    """Call write(file_object) on a temporary file next to `path`, then rename it to `path`."""
    temp = _temp_path(path)
    try:
        with open(temp, 'wb') as f:
            write(f)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
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


def check_writable_file(path):
    """Make sure `path` can be written later (its folder is created if missing): IsADirectoryError if it is a
    folder, PermissionError (naming the path and the reason) if nothing can be created there."""
    if os.path.isdir(path):
        raise IsADirectoryError(f'{path} is a folder; give a file name')
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        probe = _temp_path(path)
        with open(probe, 'wb'):
            pass
        os.remove(probe)
    except OSError as exc:
        raise PermissionError(f'{path} cannot be written ({exc.strerror or exc}); choose another place') from None
