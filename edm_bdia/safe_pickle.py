"""A pickle.Unpickler that can only reach an explicit allow-list of globals.

Unpickling calls whatever globals the stream names; restricting `find_class` to a fixed table is what makes
loading an untrusted file safe. Used for NVlabs EDM pickles (edm_bdia.loading) and for FID statistics.
"""

import pickle


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global that is not on the allow-list."""

    def __init__(self, module, name):
        self.module, self.name = module, name
        super().__init__(f'pickle refers to {module}.{name}, which is not on the allow-list of safe globals')


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
