"""FID reference statistics: NVIDIA's published registry, readers for EDM ``.npz`` and EDM2 ``.pkl``, EDM writer
(docs/fid.md, 'Reference statistics').

* EDM (``fid.py ref``): ``np.savez(mu=float64 [D], sigma=float64 [D, D])``, uncompressed; any ``.npz`` with ``mu``
  and ``sigma`` (pytorch-fid, TTUR) reads the same way.
* EDM2 (``calculate_metrics.py ref``): a pickle ``{'num_images', 'fid': {'mu', 'sigma'}, ...}``; read with the
  restricted unpickler (dicts and numpy arrays only), so a statistics file cannot run code.

The registry is ``fid_refs/registry.json`` at the top of the repository, shipped in the package as
``edm_bdia.fid_refs``; which checkpoints use which statistics is recorded once, in the presets
(edm_bdia.checkpoints.presets), and joined in by `registry()`.
"""

import importlib.resources
import json
import os
import pickle

import numpy as np

import edm_bdia
from edm_bdia.checkpoints.download import open_url
from edm_bdia.checkpoints.presets import presets_using_reference
from edm_bdia.checkpoints.restricted import RestrictedUnpickler, UnsafePickleError, numpy_globals
from edm_bdia.fid.errors import FidArgumentError
from edm_bdia.fid.frechet import StatisticsError, checked_statistics
from edm_bdia.files import atomic_write

REGISTRY_PACKAGE = 'edm_bdia.fid_refs'  # the top-level fid_refs/ folder (setup.py maps it into the package)
REGISTRY_FILE = 'registry.json'
ZIP_MAGIC = b'PK\x03\x04'


class ReferenceStatsError(FidArgumentError):
    """Reference statistics that cannot be found, read or used (argument `reference`)."""


def _reference_error(source, problem):
    return ReferenceStatsError('reference', f'{source}: {problem}')


def _registry_text():
    """registry.json from the installed package, or from the checkout's fid_refs/ when edm_bdia runs from a
    source tree that was not installed."""
    try:
        return importlib.resources.files(REGISTRY_PACKAGE).joinpath(REGISTRY_FILE).read_text(encoding='utf-8')
    except ModuleNotFoundError:
        checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(edm_bdia.__file__))), 'fid_refs')
        with open(os.path.join(checkout, REGISTRY_FILE), encoding='utf-8') as file:
            return file.read()


def registry() -> dict:
    """NVIDIA's published reference statistics: name -> {url, dataset, resolution, checkpoints}, where
    `checkpoints` lists the presets whose published FID uses them."""
    references = json.loads(_registry_text())['references']
    return {name: dict(entry, checkpoints=presets_using_reference(name)) for name, entry in references.items()}


def _read_edm2_pickle(file, source):
    try:
        data = RestrictedUnpickler(file, numpy_globals()).load()
    except (UnsafePickleError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise _reference_error(source, f'not an EDM .npz or EDM2 .pkl statistics file ({exc})') from None
    if not (isinstance(data, dict) and isinstance(data.get('fid'), dict)):
        raise _reference_error(source, "the pickle has no 'fid' statistics (expected an EDM2 calculate_metrics.py "
                                       'ref file)')
    return data['fid']


def _read_npz(file, source):
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise _reference_error(source, f'cannot read the .npz ({exc})') from None


def load_reference(source: str):
    """(mu, sigma) float64 from a registry name, a local path or a URL (.npz from EDM or .pkl from EDM2),
    checked (shapes, finite, symmetric sigma)."""
    source = os.fspath(source)
    refs = registry()
    location = refs[source]['url'] if source in refs else source
    try:
        with open_url(location, verbose=False) as file:
            header = file.read(4)
            file.seek(0)
            stats = _read_npz(file, source) if header == ZIP_MAGIC else _read_edm2_pickle(file, source)
    except OSError as exc:  # missing file, a folder, a failed download
        raise _reference_error(source, f'{exc}; pass a .npz/.pkl path, a URL or one of: {", ".join(refs)}') from None
    if 'mu' not in stats or 'sigma' not in stats:
        raise _reference_error(source, f"statistics need keys 'mu' and 'sigma', found {sorted(stats)}")
    try:
        return checked_statistics(stats['mu'], stats['sigma'], 'the statistics')
    except StatisticsError as exc:
        raise _reference_error(source, str(exc)) from None


def check_reference(stats, feature_dim, source='reference statistics'):
    """Raise ReferenceStatsError unless (mu, sigma) `stats` have `feature_dim` features (the detector's), so that
    a mismatch is found before any image is processed."""
    dim = np.shape(stats[0])[0]
    if dim != feature_dim:
        raise _reference_error(source, f'the statistics have {dim} features but the detector gives {feature_dim}; '
                                       'use reference statistics computed with the same `detector`')
    return stats


def load_checked_reference(source, feature_dim):
    """`load_reference(source)`, checked against the detector's feature size (see check_reference)."""
    return check_reference(load_reference(source), feature_dim, source)


def npz_path(dest) -> str:
    """Where `save_reference(dest, ...)` writes: like ``np.savez`` in EDM's ``fid.py ref``, ``.npz`` is appended
    when `dest` lacks it."""
    dest = os.fspath(dest)
    return dest if dest.endswith('.npz') else dest + '.npz'


def save_reference(dest, mu, sigma) -> str:
    """Write EDM-identical statistics (np.savez, uncompressed, float64 mu and sigma) atomically; return the path."""
    dest = npz_path(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    atomic_write(dest, lambda file: np.savez(file, mu=np.asarray(mu, dtype=np.float64),
                                             sigma=np.asarray(sigma, dtype=np.float64)))
    return dest
