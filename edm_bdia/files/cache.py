"""Where downloaded files are kept and whether downloading is allowed, shared by every downloader (checkpoints,
detectors, the Stability VAE): dnnlib's cache folders, so that caches NVlabs' code filled are reused, the offline
switch, and how long one connection attempt may take."""

import os
import tempfile

DNNLIB_CACHE_DIR_VARIABLE = 'DNNLIB_CACHE_DIR'
OFFLINE_VARIABLE = 'EDM_BDIA_OFFLINE'
CONNECT_TIMEOUT_S = 5.0  # a server that does not accept a connection within this is unreachable (no retry)


def dnnlib_cache_dir(subdir):
    """dnnlib's cache folder `subdir` ('downloads', 'diffusers'): $DNNLIB_CACHE_DIR/subdir, else
    ~/.cache/dnnlib/subdir (under the temp folder when there is no home folder)."""
    if os.environ.get(DNNLIB_CACHE_DIR_VARIABLE):
        return os.path.join(os.environ[DNNLIB_CACHE_DIR_VARIABLE], subdir)
    home = os.path.expanduser('~')
    base = home if home != '~' else tempfile.gettempdir()
    return os.path.join(base, '.cache', 'dnnlib', subdir)


def is_offline():
    """True when $EDM_BDIA_OFFLINE is set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get(OFFLINE_VARIABLE, '').strip().lower() not in ('', '0', 'false', 'no')
