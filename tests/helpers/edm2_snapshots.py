"""EDM2 snapshots in the published byte layout, for the loading tests (no tests here).

NVlabs' EDM2 training loop pickles `dnnlib.EasyDict(encoder=..., dataset_kwargs=EasyDict(...), loss_fn=EDM2Loss)`
and then sets `ema` to a deep copy of the network in eval mode, without gradients, on the CPU, converted to float16;
the post-hoc EMA reconstructions are deep copies of such dicts. Tests build the same thing from edm_bdia's own
classes, with two stand-ins written to a temporary folder: `dnnlib` (only its EasyDict, so that the pickle names the
global `dnnlib.util.EasyDict`) and the stored source of EDM2Loss, whose module (NVlabs' training_loop.py) imports
training-only modules at its top. The loss is written with that text as its stored source, the way the published
files carry it, without ever being imported.
"""

import contextlib
import copy
import os
import pickle
import sys
import textwrap

import torch

from edm_bdia.networks.own_torch_utils import aliased_torch_utils, own_persistence

DNNLIB_UTIL_SRC = textwrap.dedent('''
    class EasyDict(dict):
        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name)

        def __setattr__(self, name, value):
            self[name] = value
''')

# The stored source of the loss: a module importing what NVlabs' training loop imports, defining EDM2Loss.
TRAINING_LOOP_SRC = textwrap.dedent('''
    import os
    import psutil
    import numpy as np
    import torch
    import dnnlib
    from torch_utils import distributed as dist
    from torch_utils import training_stats
    from torch_utils import persistence
    from torch_utils import misc


    @persistence.persistent_class
    class EDM2Loss:
        def __init__(self, P_mean=-0.4, P_std=1.0, sigma_data=0.5):
            self.P_mean = P_mean
            self.P_std = P_std
            self.sigma_data = sigma_data

        def __call__(self, net, images, labels=None):
            sigma = (torch.zeros([images.shape[0], 1, 1, 1]) * self.P_std + self.P_mean).exp()
            denoised, logvar = net(images, sigma, labels, return_logvar=True)
            return ((denoised - images) ** 2) / logvar.exp() + logvar


    def learning_rate(cur_nimg):
        return dnnlib.EasyDict(lr=0.01 / np.sqrt(max(cur_nimg, 1)), rss=psutil.Process().memory_info().rss)
''')

LOSS_STATE = dict(P_mean=-0.4, P_std=1.0, sigma_data=0.5, _init_args=(), _init_kwargs=dict(P_mean=-0.4, P_std=1.0))


class _StoredLoss:
    """Pickles as the persistent EDM2Loss object of a published snapshot (format version 6)."""

    def __reduce__(self):
        meta = dict(type='class', version=6, module_src=TRAINING_LOOP_SRC, class_name='EDM2Loss',
                    state=dict(LOSS_STATE))
        return own_persistence()._reconstruct_persistent_obj, (meta,)


def write_dnnlib(directory):
    """A stand-in `dnnlib` package (EasyDict only) in `directory`; returns the directory."""
    package = os.path.join(directory, 'dnnlib')
    os.makedirs(package, exist_ok=True)
    with open(os.path.join(package, '__init__.py'), 'w', encoding='utf-8') as file:
        file.write('from dnnlib.util import EasyDict\n')
    with open(os.path.join(package, 'util.py'), 'w', encoding='utf-8') as file:
        file.write(DNNLIB_UTIL_SRC)
    return directory


@contextlib.contextmanager
def importable_dnnlib(directory):
    """The stand-in dnnlib importable inside the block; forgotten afterwards."""
    sys.path.insert(0, str(write_dnnlib(directory)))
    try:
        import dnnlib  # pylint: disable=import-outside-toplevel
        yield dnnlib
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == 'dnnlib' or name.startswith('dnnlib.')]:
            del sys.modules[name]


def write_edm2_snapshot(path, ema, encoder, dnnlib):
    """Pickle `ema` (and `encoder` unless None) to `path` the way NVlabs' EDM2 training loop does."""
    data = dnnlib.EasyDict(dataset_kwargs=dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset',
                                                          path='datasets/img64.zip', use_labels=True),
                           loss_fn=_StoredLoss())
    if encoder is not None:
        data = dnnlib.EasyDict(encoder=encoder, **data)
    data.ema = copy.deepcopy(ema).cpu().eval().requires_grad_(False).to(torch.float16)
    with aliased_torch_utils(), open(path, 'wb') as file:
        pickle.dump(data, file)
    return path
