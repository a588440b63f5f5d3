"""The latents file of `python -m edm_bdia invert`: one .npz with everything needed to regenerate (or edit) the
images exactly, and nothing that could run code when read.

| key | content |
|---|---|
| `x_start`, `x_next` | float64 [N, C, H, W]: the BDIA state pair (x_k, x_{k+1}); k = 0 for a full inversion |
| `latents` | float64 [N, C, H, W]: x_0 / t_0, the noise-like latents (full inversions only) |
| `labels` | int64 [N]: each image's class (-1 for an unconditional network) |
| `names` | str [N]: where each image came from |
| `settings` | JSON text: format, version, network (source, sha256), noise levels, gamma, base, strength, start, tile |
"""

import dataclasses
import json
import os
import zipfile

import numpy as np

from edm_bdia.errors import ArgumentError
from edm_bdia.files import atomic_write

FORMAT = 'edm_bdia-latents-1'


@dataclasses.dataclass
class Latents:
    """A latents file's content (numpy arrays) and its settings."""
    x_start: np.ndarray
    x_next: np.ndarray
    labels: np.ndarray
    names: list
    settings: dict

    def __len__(self):
        return len(self.x_start)


def write_latents(path, latents):
    """Write `latents` to `path` atomically (uncompressed npz), creating its folder if needed."""
    arrays = dict(x_start=latents.x_start, x_next=latents.x_next, labels=latents.labels,
                  names=np.asarray(latents.names, dtype=np.str_), settings=np.asarray(json.dumps(latents.settings)))
    sigmas = latents.settings['sigmas']
    if latents.settings['start_step'] == 0:
        arrays['latents'] = latents.x_start / sigmas[0]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_latents(path):
    """The Latents of a file written by `write_latents`, every field checked; ArgumentError('latents', ...) naming
    the file and what is wrong for anything else."""
    def refuse(problem):
        raise ArgumentError('latents', f'{path} {problem}; make latents with python -m edm_bdia invert')
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        refuse(f'cannot be read as a latents .npz ({exc})')
    missing = [key for key in ('x_start', 'x_next', 'labels', 'names', 'settings') if key not in data]
    if missing:
        refuse(f'is not a latents file of edm_bdia (no {", ".join(missing)})')
    settings = _settings(data['settings'], refuse)
    for key in ('x_start', 'x_next'):
        state = data[key]
        if state.dtype not in (np.float32, np.float64) or state.ndim != 4:
            refuse(f'holds {key} of dtype {state.dtype} and shape {state.shape}, not float32/float64 [N, C, H, W] '
                   '(a round trip needs at least float32)')
        if not np.isfinite(state).all():
            refuse(f'holds NaN or infinite values in {key}')
    labels, names = data['labels'], data['names']
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        refuse(f'holds labels of dtype {labels.dtype} and shape {labels.shape}, not integers [N]')
    if labels.size and (labels < -1).any() or (labels.min(initial=0) < 0 <= labels.max(initial=-1)):
        refuse('holds labels that mix classes with -1 (no class) or are below -1')
    if names.ndim != 1 or names.dtype.kind != 'U':
        refuse(f'holds names of dtype {names.dtype} and shape {names.shape}, not strings [N]')
    latents = Latents(data['x_start'], data['x_next'], labels.astype(np.int64), [str(name) for name in names],
                      settings)
    if len(latents) == 0:
        refuse('holds no images')
    if not (latents.x_start.shape == latents.x_next.shape and len(latents.labels) == len(latents.names)
            == len(latents)):
        refuse(f'is inconsistent: x_start {list(latents.x_start.shape)} and x_next {list(latents.x_next.shape)} '
               f'(need the same shape), {len(latents.labels)} labels and {len(latents.names)} names (need one per '
               'image)')
    if not 0 <= settings['start_step'] < len(settings['sigmas']) - 1:
        refuse(f'has start_step {settings["start_step"]} outside its {len(settings["sigmas"]) - 1} steps')
    return latents


def _settings(text, refuse):
    """The settings JSON of a latents file, its schema checked."""
    try:
        settings = json.loads(str(text))
    except ValueError as exc:
        refuse(f'has settings that are not JSON ({exc})')
    if not isinstance(settings, dict):
        refuse(f'has settings of type {type(settings).__name__}, not an object')
    if settings.get('format') != FORMAT:
        refuse(f'has format {settings.get("format")!r}, this version reads {FORMAT}')
    network = settings.get('network')
    if not isinstance(network, dict) or not isinstance(network.get('sha256'), str):
        refuse('has no network (source and sha256) in its settings')
    sigmas = settings.get('sigmas')
    if not (isinstance(sigmas, list) and len(sigmas) >= 3 and all(isinstance(v, (int, float)) for v in sigmas)
            and sigmas[-1] == 0 and all(a > b for a, b in zip(sigmas[:-1], sigmas[1:]))):
        refuse('has no valid noise levels (sigmas: decreasing numbers ending in 0) in its settings')
    step = settings.get('start_step')
    if isinstance(step, bool) or not isinstance(step, int):
        refuse(f'has start_step {step!r} in its settings, not an integer')
    for key in ('gamma', 'base', 'strength'):
        if key not in settings:
            refuse(f'has no {key} in its settings')
    return settings


def check_latents_fit(latents, path, net, network_sha256):
    """The latents were made by this network (same sha256), have its image shape and labels of its classes."""
    made_by = latents.settings['network']
    if made_by['sha256'] != network_sha256:
        raise ArgumentError('latents', f'{path} was made with another network ({made_by["source"]}, sha256 '
                                       f'{made_by["sha256"][:12]}...), not this one (sha256 {network_sha256[:12]}...); '
                                       'use the same network or invert the images again')
    expected = (net.img_channels, net.img_resolution, net.img_resolution)
    if tuple(latents.x_start.shape[1:]) != expected:
        raise ArgumentError('latents', f'{path} holds states of shape {tuple(latents.x_start.shape[1:])}, the network '
                                       f'makes {expected}')
    if latents.labels.max() >= max(net.label_dim, 0) or (net.label_dim and latents.labels.min() < 0):
        classes = f'{net.label_dim} classes' if net.label_dim else 'no classes (label -1)'
        raise ArgumentError('latents', f'{path} holds labels {latents.labels.min()} to {latents.labels.max()}, the '
                                       f'network has {classes}')
