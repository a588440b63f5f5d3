"""Read the tensors of a TorchScript archive without ``torch.jit`` and without running its code (docs/fid.md,
'Weights and their resolution order').

A TorchScript ``.pt`` is a zip with ``<root>/data.pkl`` (a pickle of the module tree whose classes are named
``__torch__.*``) and raw storages under ``<root>/data/<key>``. A restricted unpickler maps the ``__torch__`` classes to
a plain attribute holder, tensors to views of the raw storages and refuses every other global, so reading a file
cannot execute anything.
"""

import collections
import io
import pickle
import pickletools
import zipfile

import torch

from edm_bdia.checkpoints.restricted import RestrictedUnpickler

_STORAGE_DTYPES = {
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64, 'HalfStorage': torch.float16,
    'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
}


class TorchScriptObject:
    """Stand-in for a scripted class: keeps the attribute dict the pickle builds."""

    def __setstate__(self, state):
        self.attributes = state


def _identity(value, *_type_tag):
    return value


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return storage.as_strided(size, stride, storage_offset)


def is_torchscript_archive(names) -> bool:
    return any(name.endswith('/constants.pkl') for name in names) and any('/code/' in name for name in names)


def _globals_of(pickle_bytes):
    return {tuple(arg.split(' ', 1)) for op, arg, _pos in pickletools.genops(pickle_bytes)
            if op.name == 'GLOBAL'}


def read_torchscript_tensors(path) -> dict:
    """{dotted attribute name: tensor} for every tensor in the archive's module tree (e.g. ``layers.conv.weight``)."""
    with zipfile.ZipFile(path) as archive:
        data_pkl = next(name for name in archive.namelist() if name.endswith('/data.pkl'))
        root = data_pkl[:-len('data.pkl')]
        pickle_bytes = archive.read(data_pkl)
        storages = {}

        def persistent_load(pid):
            kind, storage_type, key, _location, _numel = pid
            if kind != 'storage' or not isinstance(storage_type, torch.dtype):
                raise pickle.UnpicklingError(f'{path}: unexpected persistent id {pid!r} in {data_pkl}')
            if key in storages:
                return storages[key]
            raw = bytearray(archive.read(f'{root}data/{key}'))
            storages[key] = torch.frombuffer(raw, dtype=storage_type) if raw else torch.empty(0, dtype=storage_type)
            return storages[key]

        allowed = {('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
                   ('collections', 'OrderedDict'): collections.OrderedDict}
        allowed.update({('torch', name): dtype for name, dtype in _STORAGE_DTYPES.items()})
        allowed.update({('torch.jit._pickle', name): _identity
                        for name in ('build_intlist', 'build_doublelist', 'build_boollist', 'restore_type_tag')})
        allowed.update({key: TorchScriptObject for key in _globals_of(pickle_bytes)
                        if key[0] == '__torch__' or key[0].startswith('__torch__.')})
        tree = RestrictedUnpickler(io.BytesIO(pickle_bytes), allowed, persistent_load=persistent_load).load()
    return dict(_flatten(tree, ''))


def _flatten(node, prefix):
    for name, value in getattr(node, 'attributes', {}).items():
        if isinstance(value, torch.Tensor):
            yield prefix + name, value
        elif isinstance(value, TorchScriptObject):
            yield from _flatten(value, f'{prefix}{name}.')
