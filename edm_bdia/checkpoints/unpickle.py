"""Read NVlabs persistence pickles (format version 6) from an open file, safely or trusted.

docs/checkpoints.md describes the format ('Pickle format version 6') and both modes ('Safe loading', 'Trusted
loading'):

* **safe (default)**: a restricted unpickler that resolves only the globals an EDM pickle needs and never
  executes the source code stored in the file. Every persistent object is mapped by class name to edm_bdia's own
  implementation (`edm_bdia.networks.PERSISTENT_CLASSES`), constructed from its recorded `_init_kwargs`, and given
  the pickled parameters and buffers (names and shapes must match one to one); plain persistent objects (EDM2's
  encoders) are constructed from their recorded arguments and take their pickled settings. Training-only objects
  (`EDMLoss`, `VPLoss`, `VELoss`, `EDM2Loss`, `AugmentPipe`, plus any `inert_classes` a caller names) load as
  `InertPersistentObject`s: their pickled attributes, no behaviour. EDM2 snapshots are `dnnlib.util.EasyDict`s,
  read as torch_utils' own EasyDict (a dict whose items are also attributes).
* **trusted** (`trust_pickle_code=True`): NVlabs semantics: the embedded source is executed through our
  `torch_utils.persistence`. Only for files you trust: a pickle can run any code.

Both modes work when another project's `torch_utils` comes first on sys.path (see edm_bdia.networks.own_torch_utils).
"""

import collections
import dataclasses
import importlib
import io
import pickle
import warnings

import numpy as np
import torch

from edm_bdia.networks.own_torch_utils import own_torch_utils
from edm_bdia.checkpoints.restricted import RestrictedUnpickler, UnsafePickleError, numpy_globals

PERSISTENCE_VERSION = 6
# `trust_pickle_code` in backticks: each front end spells the argument its own way (edm_bdia.errors.ArgumentError)
TRUST_HINT = 'if you trust this file, allow `trust_pickle_code` (it runs the code stored in the pickle)'
# Plain (non-Module) persistent objects of an EDM or EDM2 snapshot: not needed for sampling, kept as inert data.
INERT_CLASS_NAMES = ('EDMLoss', 'VPLoss', 'VELoss', 'EDM2Loss', 'AugmentPipe')
# Settings of a persistent object that are plain data, taken from the pickle when our object has them too.
PLAIN_SETTINGS = (bool, int, float, str, np.generic)
# dnnlib's EasyDict (EDM2 snapshots and their dataset_kwargs are EasyDicts): read as ours, dnnlib is not needed.
EASYDICT_GLOBAL = ('dnnlib.util', 'EasyDict')


class PickleLoadError(ValueError):
    """A checkpoint could not be loaded; the message names the file, the problem and what to do."""


class InertPersistentObject:
    """Safe-mode stand-in for a pickled object edm_bdia does not run (loss function, AugmentPipe, a detector's
    layers read as data).

    `class_name` is the original class name and `state` its pickled attributes, which are also readable as
    attributes (`loss_fn.P_mean`). It has no behaviour; load with trust_pickle_code=True for the real object.
    """

    def __init__(self, class_name, state):
        self.class_name = class_name
        self.state = state

    def __getattr__(self, name):
        state = self.__dict__.get('state', {})
        if name in state:
            return state[name]
        raise AttributeError(f'{self.__dict__.get("class_name")} (inert, loaded in safe mode) has no attribute '
                             f'{name!r}')

    def __call__(self, *args, **kwargs):
        raise TypeError(f'{self.class_name} was loaded in safe mode as inert data and cannot be called; {TRUST_HINT}')

    def __repr__(self):
        return f'InertPersistentObject({self.class_name!r}, attributes={sorted(self.state)})'


@dataclasses.dataclass
class _PersistentRecord:
    """A persistent object as read from the stream, before it is rebuilt from our classes."""
    class_name: str
    state: dict


def _networks():
    """`edm_bdia.networks`, imported on first use (it binds our torch_utils itself, whatever owns the name)."""
    return importlib.import_module('edm_bdia.networks')


def read_pickle(file, label, trust_pickle_code=False, inert_classes=()):
    """The object pickled in the binary `file` (a file with `peek`, as `open(path, 'rb')` gives), read to the end of
    the pickle, not further. `label` names the file in error messages. `inert_classes`: further persistent class
    names to load as InertPersistentObject in safe mode (data only)."""
    _check_magic(file, label)
    try:
        if trust_pickle_code:
            _networks()  # sources embedded by edm_bdia import edm_bdia.networks: bound to our torch_utils
            return _TrustedUnpickler(file).load()
        inert = (*INERT_CLASS_NAMES, *inert_classes)
        return _materialize(_safe_unpickler(file).load(), _networks().PERSISTENT_CLASSES, inert)
    except PickleLoadError as error:
        raise PickleLoadError(f'cannot load {label}: {error}') from None
    except UnsafePickleError as error:
        raise PickleLoadError(f'cannot load {label} safely: {error}; {TRUST_HINT}') from None
    except (EOFError, pickle.UnpicklingError) as error:
        raise PickleLoadError(f'cannot load {label}: the file is truncated or corrupt ({error}); '
                              'delete it and download it again') from None
    except Exception as error:  # anything the stored objects or code raise while being rebuilt
        raise PickleLoadError(f'cannot load {label}: {type(error).__name__}: {error}') from None


def _check_magic(file, label):
    """Reject files that are not protocol >= 2 pickles before unpickling them (looks without consuming)."""
    head = file.peek(2)[:2]
    if not head:
        raise PickleLoadError(f'cannot load {label}: the file is empty')
    if head == b'PK':
        raise PickleLoadError(f'cannot load {label}: it is a zip archive (torch.save format?), not an NVlabs pickle')
    if head[:1] != b'\x80':
        raise PickleLoadError(f'cannot load {label}: not a pickle file (it starts with {head!r})')


def pickled_tensors(state, prefix=''):
    """{state_dict key: tensor} of a pickled module tree given its top-level attribute dict, in torch's
    state_dict order (non-persistent buffers left out). Children may be safe-mode records or inert objects
    (attributes in `.state`) or plain torch modules pickled by reference (attributes in `__dict__`)."""
    tensors = {}
    non_persistent = state.get('_non_persistent_buffers_set') or ()
    for group in ('_parameters', '_buffers'):
        tensors.update({prefix + name: value for name, value in (state.get(group) or {}).items()
                        if isinstance(value, torch.Tensor) and name not in non_persistent})
    for name, child in (state.get('_modules') or {}).items():
        if child is not None:
            tensors.update(pickled_tensors(_state_of(child), f'{prefix}{name}.'))
    return tensors


def _state_of(obj):
    state = getattr(obj, 'state', None) if isinstance(obj, (_PersistentRecord, InertPersistentObject)) else None
    return state if isinstance(state, dict) else vars(obj)


# ---- trusted mode ---------------------------------------------------------------------------------------------

class _TrustedUnpickler(pickle.Unpickler):
    """Full unpickler, except that `torch_utils.*` globals resolve to our package, never a foreign one, and
    dnnlib's EasyDict to torch_utils' own."""

    def find_class(self, module, name):
        if (module, name) == EASYDICT_GLOBAL:
            return own_torch_utils().persistence.EasyDict
        if module == 'torch_utils' or module.startswith('torch_utils.'):
            own = own_torch_utils().__name__ + module[len('torch_utils'):]
            return getattr(importlib.import_module(own), name)
        return super().find_class(module, name)


# ---- safe mode ------------------------------------------------------------------------------------------------

def _safe_unpickler(file):
    return RestrictedUnpickler(file, {
        ('torch_utils.persistence', '_reconstruct_persistent_obj'): _record_persistent_obj,
        ('torch.nn.modules.container', 'ModuleDict'): torch.nn.ModuleDict,
        # plain torch containers and pools inside NVIDIA's Inception detector pickle
        ('torch.nn.modules.container', 'Sequential'): torch.nn.Sequential,
        ('torch.nn.modules.pooling', 'MaxPool2d'): torch.nn.MaxPool2d,
        ('torch.nn.modules.pooling', 'AvgPool2d'): torch.nn.AvgPool2d,
        ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
        ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
        ('torch.storage', '_load_from_bytes'): _load_storage_weights_only,
        ('collections', 'OrderedDict'): collections.OrderedDict,
        EASYDICT_GLOBAL: own_torch_utils().persistence.EasyDict,
        **numpy_globals(),
    })


def _load_storage_weights_only(data):
    """Each storage is a nested legacy torch.save blob; read it with torch's weights-only unpickler."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TypedStorage deprecation notices
        return torch.load(io.BytesIO(data), weights_only=True)


def _record_persistent_obj(meta):
    """Stands in for torch_utils.persistence._reconstruct_persistent_obj: checks the meta dict, keeps the data."""
    if not isinstance(meta, dict) or not isinstance(meta.get('state'), dict):
        raise PickleLoadError('malformed persistent object (its meta is not a dict with a "state" dict)')
    class_name = meta.get('class_name')
    if meta.get('version') != PERSISTENCE_VERSION:
        raise PickleLoadError(f'persistent object {class_name!r} uses format version {meta.get("version")!r}; '
                              f'only version {PERSISTENCE_VERSION} (NVlabs EDM and StyleGAN2-ADA onwards) is supported')
    if meta.get('type') != 'class':
        raise PickleLoadError(f'persistent object {class_name!r} has unsupported type {meta.get("type")!r}')
    return _PersistentRecord(class_name, meta['state'])


def _materialize(value, classes, inert):
    """Replace the persistent records in the top-level containers by rebuilt objects."""
    if isinstance(value, _PersistentRecord):
        return _rebuild(value, classes, inert)
    if isinstance(value, dict):  # dict, OrderedDict or EasyDict: kept as such
        return type(value)((key, _materialize(item, classes, inert)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_materialize(item, classes, inert) for item in value)
    return value


def _rebuild(record, classes, inert):
    if record.class_name in inert:
        return InertPersistentObject(record.class_name, _materialize(record.state, classes, inert))
    cls = classes.get(record.class_name)
    if cls is None:
        raise PickleLoadError(f'the pickle contains persistent class {record.class_name!r}, which edm_bdia has no '
                              f'safe implementation of; {TRUST_HINT}')
    if issubclass(cls, torch.nn.Module):
        return _rebuild_module(cls, record)
    return _rebuild_plain_object(cls, record)


def as_own_class(obj):
    """`obj` itself, or, for a plain persistent object built by code stored in a pickle (trusted mode) whose class
    edm_bdia implements, edm_bdia's object rebuilt from its recorded arguments and settings as in safe mode."""
    cls = _networks().PERSISTENT_CLASSES.get(type(obj).__name__)
    if cls is None or isinstance(obj, (cls, torch.nn.Module)) or not isinstance(getattr(obj, '__dict__', None), dict):
        return obj
    return _rebuild_plain_object(cls, _PersistentRecord(type(obj).__name__, dict(vars(obj))))


def _recorded_arguments(record):
    args, kwargs = record.state.get('_init_args') or (), record.state.get('_init_kwargs')
    if not isinstance(kwargs, dict):
        raise PickleLoadError(f'{record.class_name} carries no recorded constructor arguments (_init_kwargs)')
    return args, kwargs


def _rebuild_plain_object(cls, record):
    """Construct our plain class from the recorded arguments and take the pickled plain settings and numeric
    arrays that it also has (an encoder's scale and bias)."""
    obj = _construct(cls, *_recorded_arguments(record), record.class_name)
    for name, value in record.state.items():
        if not name.startswith('_') and name in vars(obj) and isinstance(value, (*PLAIN_SETTINGS, np.ndarray)):
            setattr(obj, name, value)
    return obj


def _rebuild_module(cls, record):
    """Construct our class from the recorded arguments, put the pickled tensors in place one to one and take
    the pickled plain settings."""
    module = _construct(cls, *_recorded_arguments(record), record.class_name)
    tensors = pickled_tensors(record.state)
    differences = _state_differences(module.state_dict(), tensors)
    if differences:
        raise PickleLoadError(f'the pickled {record.class_name} does not match edm_bdia\'s implementation '
                              f'({len(differences)} difference(s), first: {differences[0]}); {TRUST_HINT}')
    module.load_state_dict(tensors, strict=True, assign=True)
    unfilled = [name for name, tensor in [*module.named_parameters(), *module.named_buffers()] if tensor.is_meta]
    if unfilled:
        raise PickleLoadError(f'the pickled {record.class_name} lacks tensors that edm_bdia\'s implementation '
                              f'needs: {", ".join(unfilled)}; {TRUST_HINT}')
    for name, param in module.named_parameters():
        param.requires_grad_(tensors[name].requires_grad)
    _copy_settings(module, record.state)
    return module


def _construct(cls, args, kwargs, class_name):
    """`cls(*args, **kwargs)`, on the meta device when the constructor allows it (skips the random weight
    initialisation, which takes seconds for full-size networks: every tensor is replaced anyway)."""
    try:
        with torch.device('meta'):
            return cls(*args, **kwargs)
    except Exception:  # pylint: disable=broad-except
        pass  # the constructor computes with tensor values (e.g. float(tensor)): build it for real
    try:
        return cls(*args, **kwargs)
    except Exception as error:
        raise PickleLoadError(f'cannot build {class_name} from its recorded arguments {kwargs}: '
                              f'{type(error).__name__}: {error}') from None


def _state_differences(ours, pickled):
    """Readable key and shape differences between our state_dict and the pickled tensors."""
    differences = [f'{key} is missing from the pickle' for key in ours if key not in pickled]
    differences += [f'{key} is not in our implementation' for key in pickled if key not in ours]
    differences += [f'{key} has shape {list(pickled[key].shape)} in the pickle, {list(ours[key].shape)} here'
                    for key in ours if key in pickled and ours[key].shape != pickled[key].shape]
    return differences


def _copy_settings(module, state):
    """Take the pickled plain settings (training flag, scalars such as skip_scale) that our module also has."""
    for name, value in state.items():
        if not name.startswith('_') and name in vars(module) and isinstance(value, PLAIN_SETTINGS):
            setattr(module, name, value)
    for name, child in (state.get('_modules') or {}).items():
        if child is not None and name in module._modules:
            _copy_settings(module._modules[name], _state_of(child))
