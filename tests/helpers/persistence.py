"""Shared helpers for the persistence / loading tests (no tests here).

TRAINING_SRC stands in for NVlabs' training/loss.py and training/augment.py: persistent plain objects named
like theirs plus a tiny persistent network. Tests write it to a temporary directory, so in a fresh subprocess
that never imported it, unpickling must execute the source stored in the pickle.
"""

import copy
import io
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap

import torch

TRAINING_MODULE = 'tiny_training'
TRAINING_SRC = textwrap.dedent('''
    import numpy as np
    import torch
    from torch_utils import persistence
    from torch_utils import misc


    @persistence.persistent_class
    class EDMLoss:
        def __init__(self, P_mean=-1.2, P_std=1.2, sigma_data=0.5):
            self.P_mean = P_mean
            self.P_std = P_std
            self.sigma_data = sigma_data


    @persistence.persistent_class
    class AugmentPipe:
        def __init__(self, p=0.12, xflip=1e8, yflip=1, scale=1, rotate_frac=1, aniso=1, translate_frac=1):
            self.p = float(p)
            self.xflip, self.yflip, self.scale = float(xflip), float(yflip), float(scale)
            self.rotate_frac, self.aniso, self.translate_frac = float(rotate_frac), float(aniso), float(translate_frac)

        def __call__(self, images):
            return images * misc.constant(1 - self.p, device=images.device)


    @persistence.persistent_class
    class TinyDenoiser(torch.nn.Module):
        def __init__(self, channels, init=dict(init_weight=np.sqrt(0.2))):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(channels, channels) * init['init_weight'])
            self.register_buffer('offset', torch.arange(channels, dtype=torch.float32))
            self.skip_scale = np.sqrt(0.5)
            self.blocks = torch.nn.ModuleDict(dict(inner=TinyLayer(channels=channels)))

        def forward(self, x):
            return self.blocks['inner'](x @ self.weight + self.offset) * self.skip_scale


    @persistence.persistent_class
    class TinyLayer(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.linspace(0.5, 1.5, channels))

        def forward(self, x):
            return torch.tanh(x * self.scale)
''')


def write_training_module(directory):
    """Write TRAINING_SRC as <directory>/tiny_training.py and return the directory."""
    with open(os.path.join(directory, TRAINING_MODULE + '.py'), 'w', encoding='utf-8') as file:
        file.write(TRAINING_SRC)
    return directory


def training_snapshot(ema, loss_fn, augment_pipe, dataset_kwargs):
    """The dict NVlabs' training loop pickles: Module values deep-copied, eval, no grad, on the CPU."""
    data = dict(ema=ema, loss_fn=loss_fn, augment_pipe=augment_pipe, dataset_kwargs=dict(dataset_kwargs))
    for key, value in data.items():
        if isinstance(value, torch.nn.Module):
            data[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
    return data


def write_foreign_torch_utils(directory):
    """Another project's `torch_utils` whose persistence fails loudly if anything uses it."""
    package = os.path.join(directory, 'torch_utils')
    os.makedirs(package, exist_ok=True)
    with open(os.path.join(package, '__init__.py'), 'w', encoding='utf-8') as file:
        file.write('FOREIGN = True\n')
    with open(os.path.join(package, 'persistence.py'), 'w', encoding='utf-8') as file:
        file.write('raise ImportError("the foreign torch_utils.persistence was imported")\n')
    return directory


def run_python(code, args=(), pythonpath=(), cwd=None, timeout=300):
    """Run `code` with `args` in a fresh single-threaded interpreter, in `cwd` (default: the temp dir, so that the
    repository's own torch_utils is not on sys.path through the working directory), with `pythonpath` first on
    sys.path; return its stdout."""
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = '1'  # the test machines have few, shared cores
    env['PYTHONPATH'] = os.pathsep.join([*map(str, pythonpath), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    result = subprocess.run([sys.executable, '-c', code, *map(str, args)], env=env,
                            cwd=cwd or tempfile.gettempdir(), capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode != 0:
        raise AssertionError(f'subprocess failed ({result.returncode}):\n{result.stdout}\n{result.stderr}')
    return result.stdout


def read_stream(blob):
    """(meta of every persistent object in stream order, set of globals the stream asks for, the unpickled object
    with each persistent object left as its meta dict). dnnlib's EasyDict reads as a dict (dnnlib need not exist)."""
    metas, stream_globals = [], set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            stream_globals.add((module, name))
            if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
                return lambda meta: metas.append(meta) or meta
            if (module, name) == ('dnnlib.util', 'EasyDict'):
                return dict
            return super().find_class(module, name)
    data = Recorder(io.BytesIO(blob)).load()
    return metas, stream_globals, data
