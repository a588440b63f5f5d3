"""NVlabs-compatible persistent classes: pickle format version 6 (docs/checkpoints.md,
'Pickle format version 6').

A class decorated with `persistent_class` pickles as a call to
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` carries the source text of the
whole module that defined the class, the class name and the object's `__dict__`. Unpickling executes that
source in a fresh synthetic module (once per distinct source text) and restores the state into a new
instance without calling the constructor. This file is an independent implementation of that format,
without dnnlib; NVlabs' own loader reads the pickles it writes and vice versa.

Executing embedded source runs arbitrary code: only do it for trusted files. `edm_bdia.checkpoints` offers a
safe loader that never calls into this module's reconstruction path.
"""

import builtins
import copy
import importlib
import inspect
import io
import pickle
import sys
import types
import uuid

import numpy as np
import torch

_version = 6                 # Pickle format version written and accepted.
_decorators = set()          # Every Decorator class created by persistent_class.
_import_hooks = []           # Callables meta -> meta, run before each reconstruction.
_module_to_src_dict = {}     # Module object -> its source text.
_src_to_module_dict = {}     # Source text -> synthetic (or original) module.

# The package this file belongs to. Normally 'torch_utils'; edm_bdia may load it under a private name when
# another project's `torch_utils` shadows ours on sys.path (edm_bdia.networks.own_torch_utils).
_own_package = __name__.rpartition('.')[0]


class EasyDict(dict):
    """A dict whose items are also attributes (stand-in for dnnlib.EasyDict)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]


def persistent_class(orig_class):
    """Class decorator: instances record their constructor arguments and pickle together with the source
    code of the module that defines `orig_class` (format version 6)."""
    if not isinstance(orig_class, type):
        raise TypeError(f'persistent_class expects a class, got {type(orig_class).__name__}')
    if is_persistent(orig_class):
        return orig_class
    if orig_class.__module__ not in sys.modules:
        raise ValueError(f'persistent_class: module {orig_class.__module__!r} of {orig_class.__name__} is not imported')
    orig_module = sys.modules[orig_class.__module__]
    orig_module_src = _module_to_src(orig_module)

    class Decorator(orig_class):
        _orig_module_src = orig_module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            record = getattr(self, '_record_init_args', True)
            self._init_args = copy.deepcopy(args) if record else None
            self._init_kwargs = copy.deepcopy(kwargs) if record else None
            _check_pickleable(self.__reduce__())

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            # Start from the default reduction (copyreg._reconstructor, (cls, object, None), state) and swap in
            # the persistent reconstructor with the meta dict; the key order is NVlabs' (same byte layout).
            fields = list(super().__reduce__())
            fields += [None] * (3 - len(fields))
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                            class_name=self._orig_class_name, state=fields[2])
                fields[0] = _reconstruct_persistent_obj
                fields[1] = (meta,)
                fields[2] = None
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__module__ = orig_class.__module__
    _decorators.add(Decorator)
    return Decorator


def is_persistent(obj):
    """True for a persistent class or an instance of one."""
    try:
        if obj in _decorators:
            return True
    except TypeError:  # unhashable object
        pass
    return type(obj) in _decorators


def import_hook(hook):
    """Register `hook(meta) -> meta`, run on every persistent object before it is reconstructed (it may,
    for example, patch `meta.module_src`)."""
    if not callable(hook):
        raise TypeError('import_hook expects a callable')
    _import_hooks.append(hook)


def _reconstruct_persistent_obj(meta):
    """Pickle entry point: rebuild one persistent object from its meta dict."""
    meta = EasyDict(meta)
    meta.state = EasyDict(meta.state)
    for hook in _import_hooks:
        meta = hook(meta)
        if meta is None:
            raise ValueError('a persistence import_hook returned None instead of the meta dict')
    if meta.version != _version:
        raise ValueError(f'unsupported persistent-object format version {meta.version!r} (expected {_version})')
    if meta.type != 'class':
        raise ValueError(f'unsupported persistent-object type {meta.type!r} (expected "class")')
    module = _src_to_module(meta.module_src)
    cls = persistent_class(module.__dict__[meta.class_name])
    obj = cls.__new__(cls)
    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(meta.state)  # torch.nn.Module.__setstate__ also fills in hook dicts newer than the pickle
    else:
        obj.__dict__.update(meta.state)
    return obj


# Pickles must name the entry point by this global so that NVlabs' loader finds it, also when this file
# was loaded under a private package name.
_reconstruct_persistent_obj.__module__ = 'torch_utils.persistence'


def _module_to_src(module):
    """Source text of a module (cached, so that synthetic modules created from a pickle map back to it)."""
    src = _module_to_src_dict.get(module)
    if src is None:
        src = inspect.getsource(module)
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
    return src


def _src_to_module(src):
    """Module for a source text; on a miss, create a synthetic module, register it, then exec the source."""
    module = _src_to_module_dict.get(src)
    if module is None:
        module = types.ModuleType('_imported_module_' + uuid.uuid4().hex)
        module.__dict__['__builtins__'] = _routed_builtins()
        # Registered before exec: the source's own @persistent_class calls look the text up (no inspect.getsource).
        sys.modules[module.__name__] = module
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
        exec(src, module.__dict__)  # pylint: disable=exec-used
    return module


def _routed_builtins():
    """Builtins whose __import__ sends `torch_utils[.x]` to this package, whatever `torch_utils` is first on
    sys.path (so the exec'd source binds our `torch_utils`, not a foreign one)."""
    routed = dict(builtins.__dict__)
    routed['__import__'] = _routed_import
    return routed


def _routed_import(name, globals=None, locals=None, fromlist=(), level=0):  # pylint: disable=redefined-builtin
    if level != 0 or not (name == 'torch_utils' or name.startswith('torch_utils.')):
        try:
            return builtins.__import__(name, globals, locals, fromlist, level)
        except ModuleNotFoundError:
            if level != 0 or name not in TRAINING_ONLY_MODULES:
                raise
            return _UnavailableModule(name)
    own_name = _own_package + name[len('torch_utils'):]
    module = importlib.import_module(own_name)
    stand_ins = {}
    for item in fromlist or ():
        if item != '*' and not hasattr(module, item):
            try:
                importlib.import_module(f'{own_name}.{item}')  # `from torch_utils import misc` loads the submodule
            except ModuleNotFoundError:
                if f'{name}.{item}' not in TRAINING_ONLY_MODULES:
                    raise
                stand_ins[item] = _UnavailableModule(f'{name}.{item}')
    if stand_ins:  # a copy of the package's namespace with the stand-ins; the package itself is left alone
        view = types.ModuleType(module.__name__)
        view.__dict__.update(vars(module), **stand_ins)
        return view
    # __import__ semantics: `import a.b` returns the top package, `from a.b import c` returns a.b.
    return module if fromlist else importlib.import_module(_own_package)


# Modules that NVlabs' training code imports at the top of a source file that pickles embed (EDM2's
# training/training_loop.py defines the loss class of every EDM2 snapshot), which sampling never uses and which this
# package does not provide. When they cannot be imported, the executed source gets a stand-in that fails on use.
TRAINING_ONLY_MODULES = ('dnnlib', 'psutil', 'torch_utils.distributed', 'torch_utils.training_stats')


class _UnavailableModule(types.ModuleType):
    """Stand-in for a training-only module that is not installed: any use of its contents is an error."""

    def __getattr__(self, attr):
        if attr.startswith('__'):
            raise AttributeError(attr)
        raise ModuleNotFoundError(f'{self.__name__} is not available here: code stored in the pickle uses '
                                  f'{self.__name__}.{attr}, which only NVlabs\' training code needs')


def _check_pickleable(obj):
    """Fail at construction time, not at save time, when a persistent object holds something unpicklable."""
    def strip(value):
        if isinstance(value, (list, tuple, set)):
            return [strip(item) for item in value]
        if isinstance(value, dict):
            return [[strip(k), strip(v)] for k, v in value.items()]
        if isinstance(value, (str, bytes, bytearray, int, float, complex, bool, type(None))):
            return None
        if value is _reconstruct_persistent_obj:
            return None  # pickled by name; may live under a private package name here
        if isinstance(value, (np.ndarray, np.generic, torch.Tensor, torch.nn.Module)) or is_persistent(value):
            return None  # pickled on their own terms (modules: their persistent parts were checked when built)
        return value
    pickle.dump(strip(obj), io.BytesIO())
