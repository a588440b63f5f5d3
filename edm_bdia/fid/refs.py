"""FID reference statistics: NVIDIA's published registry, readers for EDM ``.npz`` and EDM2 ``.pkl``, EDM writer.

* EDM (``fid.py ref``): ``np.savez(mu=float64 [D], sigma=float64 [D, D])``, uncompressed (fid.md §5).
* EDM2 (``calculate_metrics.py ref``): a pickle ``{'num_images', 'fid': {'mu', 'sigma'}, ...}``; read with a restricted
  unpickler that can only rebuild dicts and numpy arrays, so a statistics file cannot run code.
"""

import importlib
import importlib.resources
import json
import os
import pickle

import numpy as np

from edm_bdia.download import DownloadError, open_url
from edm_bdia.fid.errors import FidError
from edm_bdia.files import atomic_write
from edm_bdia.safe_pickle import RestrictedUnpickler, UnsafePickleError

REGISTRY_RESOURCE = 'fid_refs.json'  # edm_bdia/data/fid_refs.json, identical to fid_refs/registry.json
ZIP_MAGIC = b'PK\x03\x04'


class ReferenceStatsError(FidError):
    """A reference statistics source that cannot be found, read or used."""


def registry() -> dict:
    """NVIDIA's published reference statistics: name -> {url, dataset, resolution, checkpoints}."""
    text = importlib.resources.files('edm_bdia').joinpath('data', REGISTRY_RESOURCE).read_text(encoding='utf-8')
    return json.loads(text)['references']


def _numpy_globals():
    """Globals an EDM2 statistics pickle needs: numpy array/dtype/scalar reconstruction, under both spellings."""
    try:
        multiarray = importlib.import_module('numpy._core.multiarray')
    except ImportError:  # numpy < 2
        multiarray = importlib.import_module('numpy.core.multiarray')
    allowed = {(module_name, name): getattr(multiarray, name)
               for module_name in ('numpy._core.multiarray', 'numpy.core.multiarray')
               for name in ('_reconstruct', 'scalar')}
    allowed[('numpy', 'ndarray')] = np.ndarray
    allowed[('numpy', 'dtype')] = np.dtype
    return allowed


def _read_edm2_pickle(file, source):
    try:
        data = RestrictedUnpickler(file, _numpy_globals()).load()
    except (UnsafePickleError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ReferenceStatsError(f'--ref {source}: not an EDM .npz or EDM2 .pkl statistics file ({exc})') from exc
    if not (isinstance(data, dict) and isinstance(data.get('fid'), dict)):
        raise ReferenceStatsError(f"--ref {source}: pickle has no 'fid' statistics (expected an EDM2 "
                                  "calculate_metrics.py ref file)")
    return data['fid']


def _read_npz(file, source):
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise ReferenceStatsError(f'--ref {source}: cannot read .npz ({exc})') from exc


def _validated(stats, source):
    if 'mu' not in stats or 'sigma' not in stats:
        raise ReferenceStatsError(f"--ref {source}: statistics need keys 'mu' and 'sigma', found {sorted(stats)}")
    mu = np.asarray(stats['mu'], dtype=np.float64)
    sigma = np.asarray(stats['sigma'], dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ReferenceStatsError(f'--ref {source}: mu must be [D] and sigma [D, D], got {mu.shape}, {sigma.shape}')
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ReferenceStatsError(f'--ref {source}: statistics contain NaN or infinity')
    if not np.allclose(sigma, sigma.T, rtol=0, atol=1e-6 * max(np.abs(sigma).max(), 1e-300)):
        raise ReferenceStatsError(f'--ref {source}: sigma is not symmetric, so it is not a covariance matrix')
    return mu, sigma


def load_reference(source: str):
    """(mu, sigma) float64 from a registry name, a local path or a URL (.npz from EDM or .pkl from EDM2)."""
    refs = registry()
    location = refs[source]['url'] if source in refs else source
    try:
        with open_url(location, verbose=False) as file:
            header = file.read(4)
            file.seek(0)
            stats = _read_npz(file, source) if header == ZIP_MAGIC else _read_edm2_pickle(file, source)
    except (OSError, DownloadError) as exc:
        names = ', '.join(refs)
        raise ReferenceStatsError(f'--ref {source}: cannot open ({exc}); pass a .npz/.pkl path, a URL or one of: '
                                  f'{names}') from exc
    return _validated(stats, source)


def save_reference(dest: str, mu, sigma) -> str:
    """Write EDM-identical statistics (np.savez, uncompressed, float64 mu and sigma) atomically; return the path.

    Like ``np.savez`` in EDM's ``fid.py ref``, ``.npz`` is appended when ``dest`` lacks it."""
    dest = os.fspath(dest)
    if not dest.endswith('.npz'):
        dest += '.npz'
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    atomic_write(dest, lambda file: np.savez(file, mu=np.asarray(mu, dtype=np.float64),
                                             sigma=np.asarray(sigma, dtype=np.float64)))
    return dest
