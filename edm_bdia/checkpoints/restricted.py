"""A pickle.Unpickler that can only reach an explicit allow-list of globals, and the one numpy allow-list.

Unpickling calls whatever globals the stream names; restricting `find_class` to a fixed table is what makes
loading an untrusted file safe. Used for NVlabs EDM pickles (edm_bdia.checkpoints.unpickle), the Inception
detector's TorchScript tensors and FID statistics (edm_bdia.fid); docs/checkpoints.md, 'Safe loading'.
"""

import importlib
import pickle

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global that is not on the allow-list."""

    def __init__(self, module, name):
        self.module, self.name = module, name
        super().__init__(f'pickle refers to {module}.{name}, which is not on the allow-list of safe globals')

    def __reduce__(self):
        return type(self), (self.module, self.name)


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` returns `allowed_globals[(module, name)]` and refuses the rest.

    The allow-list maps a (module, name) pair as written in the pickle to the object to use for it, which may
    be a safe replacement for the original global.
    """

    def __init__(self, file, allowed_globals, persistent_load=None):
        super().__init__(file)
        self._allowed_globals = dict(allowed_globals)
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module, name):
        try:
            return self._allowed_globals[(module, name)]
        except KeyError:
            raise UnsafePickleError(module, name) from None


def _multiarray():
    try:  # numpy >= 2 spelling; pickles written under numpy 1.x say numpy.core (both are accepted below)
        return importlib.import_module('numpy._core.multiarray')
    except ImportError:  # pragma: no cover - numpy 1.x
        return importlib.import_module('numpy.core.multiarray')


def _plain_dtype(*args):
    """`numpy.dtype`, refusing object dtypes (their items would be arbitrary pickled objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafePickleError('numpy', f'dtype {dtype!r}')
    return dtype


def _plain_scalar(dtype, *args):
    """numpy scalar reconstruction, refusing object dtypes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError('numpy', f'scalar of dtype {dtype!r}')
    return _multiarray().scalar(dtype, *args)


def numpy_globals():
    """What pickled numpy scalars and arrays need (`np.float64(0.7)`, `np.ndarray`), under the numpy 1.x and 2.x
    module spellings; object dtypes are refused."""
    multiarray = _multiarray()
    allowed = {('numpy', 'dtype'): _plain_dtype, ('numpy', 'ndarray'): np.ndarray}
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed[(module, 'scalar')] = _plain_scalar
        allowed[(module, '_reconstruct')] = multiarray._reconstruct
    return allowed
