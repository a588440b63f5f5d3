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
    """The Latents of a file written by `write_latents`; ArgumentError('latents', ...) for anything else."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArgumentError('latents', f'{path} cannot be read as a latents .npz ({exc}); make one with '
                                       'python -m edm_bdia invert') from None
    missing = [key for key in ('x_start', 'x_next', 'labels', 'names', 'settings') if key not in data]
    if missing:
        raise ArgumentError('latents', f'{path} is not a latents file of edm_bdia (no {", ".join(missing)}); make one '
                                       'with python -m edm_bdia invert')
    settings = json.loads(str(data['settings']))
    if settings.get('format') != FORMAT:
        raise ArgumentError('latents', f'{path} has format {settings.get("format")!r}, this version reads {FORMAT}')
    latents = Latents(data['x_start'], data['x_next'], data['labels'], [str(name) for name in data['names']], settings)
    if not (latents.x_start.shape == latents.x_next.shape and len(latents.labels) == len(latents.names)
            == len(latents)):
        raise ArgumentError('latents', f'{path} is inconsistent: {len(latents)} state pairs, {len(latents.labels)} '
                                       f'labels, {len(latents.names)} names')
    return latents


def check_latents_fit(latents, path, net, network_sha256):
    """The latents were made by this network (same sha256) and have its image shape."""
    made_by = latents.settings['network']
    if made_by['sha256'] != network_sha256:
        raise ArgumentError('latents', f'{path} was made with another network ({made_by["source"]}, sha256 '
                                       f'{made_by["sha256"][:12]}...), not this one (sha256 {network_sha256[:12]}...); '
                                       'use the same network or invert the images again')
    expected = (net.img_channels, net.img_resolution, net.img_resolution)
    if tuple(latents.x_start.shape[1:]) != expected:
        raise ArgumentError('latents', f'{path} holds states of shape {tuple(latents.x_start.shape[1:])}, the network '
                                       f'makes {expected}')
