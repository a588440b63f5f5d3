"""Reference statistics: NVIDIA's published registry, readers and writers for EDM ``.npz`` and EDM2 ``.pkl``
(docs/fid.md, 'Reference statistics').

* EDM (``fid.py ref``): ``np.savez(mu=float64 [D], sigma=float64 [D, D])``, uncompressed, Inception statistics
  only (read as the ``fid`` metric); any ``.npz`` with ``mu`` and ``sigma`` (pytorch-fid, TTUR) reads the same way.
* EDM2 (``calculate_metrics.py ref``): a pickle ``{'num_images': N, 'fid': {'mu', 'sigma'}, 'fd_dinov2': {...}}``;
  read with a restricted unpickler (dicts, numbers and numpy arrays only), so a statistics file cannot run code,
  and written as plain pickle protocol 4 of those.

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
from edm_bdia.errors import ArgumentError
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


def _array_from_buffer(buffer, dtype, shape, order='C'):
    """numpy's reconstruction of an array pickled with protocol 5 (``_frombuffer``), for plain dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError('numpy', f'array of dtype {dtype!r}')
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order).copy()


def _statistics_globals():
    """What a statistics pickle may name: numpy arrays and scalars, under every protocol and numpy spelling."""
    allowed = numpy_globals()
    for module in ('numpy._core.numeric', 'numpy.core.numeric'):
        allowed[(module, '_frombuffer')] = _array_from_buffer
    return allowed


def _read_edm2_pickle(file, source):
    """{metric: {'mu', 'sigma'}} of an EDM2 statistics pickle (its `num_images` and other plain values dropped)."""
    try:
        data = RestrictedUnpickler(file, _statistics_globals()).load()
    except (UnsafePickleError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise _reference_error(source, f'not an EDM .npz or EDM2 .pkl statistics file ({exc})') from None
    entries = data.items() if isinstance(data, dict) else ()
    statistics = {key: value for key, value in entries if isinstance(value, dict)}
    if not statistics:
        raise _reference_error(source, 'the pickle holds no statistics (expected an EDM2 calculate_metrics.py ref '
                                       "file: {'fid': {'mu', 'sigma'}, ...})")
    return statistics


def _read_npz(file, source):
    """{'fid': {'mu', 'sigma', ...}}: an EDM .npz holds Inception statistics only."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {'fid': {key: npz[key] for key in npz.files}}
    except (OSError, ValueError) as exc:
        raise _reference_error(source, f'cannot read the .npz ({exc})') from None


def _read_statistics_file(source):
    """({metric: raw dict}, 'npz' or 'pkl') from a registry name, a local path or a URL; the format is told by the
    content (a zip header means .npz)."""
    refs = registry()
    location = refs[source]['url'] if source in refs else source
    try:
        with open_url(location, verbose=False) as file:
            is_npz = file.read(4) == ZIP_MAGIC
            file.seek(0)
            return (_read_npz(file, source), 'npz') if is_npz else (_read_edm2_pickle(file, source), 'pkl')
    except OSError as exc:  # missing file, a folder, a failed download
        raise _reference_error(source, f'{exc}; pass a .npz/.pkl path, a URL or one of: {", ".join(refs)}') from None


def _missing_metric(source, metric, file_format, present):
    if file_format == 'npz':
        edm2 = ', '.join(name for name, entry in registry().items() if entry['url'].endswith('.pkl'))
        return _reference_error(source, f'an EDM .npz holds FID (Inception) statistics only, none for {metric}; use '
                                        f'EDM2 .pkl statistics ({edm2} or your own) or leave {metric} out of `metrics`')
    return _reference_error(source, f"the file has no '{metric}' statistics (it has: {', '.join(present)}); leave "
                                    f'{metric} out of `metrics` or make statistics that include it')


def load_references(source, metrics=('fid',)):
    """{metric: (mu, sigma)} float64 for each of `metrics` from a registry name, a local path or a URL (.npz from
    EDM: fid only; .pkl from EDM2: every metric it holds), each checked (keys, shapes, finite, symmetric sigma);
    a metric the file lacks is an error."""
    source = os.fspath(source)
    statistics, file_format = _read_statistics_file(source)
    references = {}
    for metric in metrics:
        if metric not in statistics:
            raise _missing_metric(source, metric, file_format, list(statistics))
        stats = statistics[metric]
        if 'mu' not in stats or 'sigma' not in stats:
            raise _reference_error(source, f"{metric} statistics need keys 'mu' and 'sigma', found {sorted(stats)}")
        try:
            references[metric] = checked_statistics(stats['mu'], stats['sigma'], f'the {metric} statistics')
        except StatisticsError as exc:
            raise _reference_error(source, str(exc)) from None
    return references


def load_reference(source, metric='fid'):
    """(mu, sigma) float64 of one metric (see load_references)."""
    return load_references(source, (metric,))[metric]


def check_feature_dims(references, feature_dims, source='reference statistics'):
    """Raise ReferenceStatsError unless each metric's statistics in `references` ({metric: (mu, sigma)}) have the
    feature size of its detector (`feature_dims`: {metric: size}), so that a mismatch is found before any image
    is processed."""
    for metric, (mu, _) in references.items():
        dim = np.shape(mu)[0]
        if dim != feature_dims[metric]:
            raise _reference_error(source, f'the {metric} statistics have {dim} features but its detector gives '
                                           f'{feature_dims[metric]}; use reference statistics computed with the same '
                                           'detector')
    return references


def npz_path(dest) -> str:
    """Where `save_reference(dest, ...)` writes: like ``np.savez`` in EDM's ``fid.py ref``, ``.npz`` is appended
    when `dest` lacks it."""
    dest = os.fspath(dest)
    return dest if dest.endswith('.npz') else dest + '.npz'


def statistics_file_format(dest):
    """'pkl' (EDM2's pickle, any metrics) for a destination ending in .pkl, else 'npz' (EDM's file, fid only)."""
    return 'pkl' if os.fspath(dest).lower().endswith('.pkl') else 'npz'


def check_statistics_destination(dest, metrics, file_format):
    """Raise ArgumentError('dest') before any work when `file_format` cannot hold `metrics`."""
    if file_format == 'npz' and tuple(metrics) != ('fid',):
        raise ArgumentError('dest', f'{os.fspath(dest)}: an EDM .npz holds FID statistics only; name the file .pkl '
                                    f'to save {", ".join(metrics)} in EDM2\'s layout')


def save_statistics(dest, statistics, num_images, file_format) -> str:
    """Write {metric: (mu, sigma)} as EDM's .npz (fid only; see save_reference) or EDM2's pickle (see
    save_statistics_pickle); return the path written."""
    check_statistics_destination(dest, list(statistics), file_format)
    if file_format == 'npz':
        return save_reference(dest, *statistics['fid'])
    return save_statistics_pickle(dest, statistics, num_images)


def save_statistics_pickle(dest, statistics, num_images) -> str:
    """Write EDM2's statistics pickle {'num_images': N, metric: {'mu', 'sigma'}, ...} (float64 numpy arrays,
    pickle protocol 4) atomically at `dest` as given; return the path."""
    dest = os.fspath(dest)
    data = dict(num_images=int(num_images))
    for metric, (mu, sigma) in statistics.items():
        data[metric] = dict(mu=np.asarray(mu, dtype=np.float64), sigma=np.asarray(sigma, dtype=np.float64))
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    atomic_write(dest, lambda file: pickle.dump(data, file, protocol=4))
    return dest


def save_reference(dest, mu, sigma) -> str:
    """Write EDM-identical statistics (np.savez, uncompressed, float64 mu and sigma) atomically; return the path."""
    dest = npz_path(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    atomic_write(dest, lambda file: np.savez(file, mu=np.asarray(mu, dtype=np.float64),
                                             sigma=np.asarray(sigma, dtype=np.float64)))
    return dest
