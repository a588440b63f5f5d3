"""Where a network comes from: a preset name, a local path, a file:// URL or an http(s) URL, resolved once into a
`Checkpoint` (a local file, downloaded into the cache if needed, or the built-in analytic model); docs/checkpoints.md,
'Sources' and 'Identity of a checkpoint'.

A `Checkpoint` reads its file once: `load_network` / `load_pickle` hash the bytes while unpickling them, so
`sha256` afterwards costs nothing (before loading, it reads the file once itself).
"""

import difflib
import os

import torch

from edm_bdia.checkpoints.download import is_remote, local_path, open_url
from edm_bdia.checkpoints.hashing import HashingReader, sha256_state
from edm_bdia.checkpoints.presets import PRESETS
from edm_bdia.checkpoints.sampler_interface import with_noise_interface
from edm_bdia.checkpoints.unpickle import PickleLoadError, as_own_class, read_pickle
from edm_bdia.files import sha256_file


class Checkpoint:
    """A resolved network source.

    `source` is the text it was resolved from (used in messages), `path` the local pickle file (None for the
    built-in model), `url` the address it was downloaded from (None for local files) and `preset` the matching
    `Preset` or None.
    """

    def __init__(self, source, path=None, url=None, preset=None):
        self.source, self.path, self.url, self.preset = source, path, url, preset
        self._sha256 = None

    def __repr__(self):
        return f'Checkpoint({self.source!r}, path={self.path!r})'

    @property
    def builtin(self):
        """True for the built-in analytic model (no file)."""
        return self.path is None

    @property
    def sha256(self):
        """Hex sha256 of the pickle file, or of the built-in model's parameters and buffers."""
        if self._sha256 is None:
            self._sha256 = sha256_state(_builtin_model()) if self.builtin else sha256_file(self.path)
        return self._sha256

    def load_pickle(self, trust_pickle_code=False, inert_classes=()):
        """The whole pickled object (an NVlabs snapshot is a dict with `ema`, `loss_fn`, `augment_pipe`,
        `dataset_kwargs`); see edm_bdia.checkpoints.unpickle for the safe and trusted modes. The built-in model
        gives dict(ema=model)."""
        if self.builtin:
            return dict(ema=self._builtin_network(None))
        with open(self.path, 'rb') as file:
            reader = HashingReader(file)
            data = read_pickle(reader, self.source, trust_pickle_code=trust_pickle_code, inert_classes=inert_classes)
            self._sha256 = reader.file_sha256()
        expected = self.preset.sha256 if self.preset is not None else None
        if expected is not None and self._sha256 != expected:
            raise PickleLoadError(f'{self.path} (preset {self.preset.name}) has sha256 {self._sha256}, not the '
                                  f'{expected} it was shipped with; reinstall edm_bdia')
        return data

    def load_network(self, device=None, trust_pickle_code=False):
        """The `ema` network of an NVlabs snapshot in eval mode, without gradients, on `device`. A network whose
        stored code lacks the noise-range interface (NVlabs' EDM2 Precond, trusted) comes wrapped in
        `ContinuousNoiseLevels`."""
        return self.load_network_and_encoder(device=device, trust_pickle_code=trust_pickle_code)[0]

    def load_network_and_encoder(self, device=None, trust_pickle_code=False, standard_if_missing=True):
        """(network, encoder): the network as `load_network` gives it and the encoder between images and the
        network's space: the snapshot's `encoder` (EDM2; always edm_bdia's implementation, also when trusted),
        else a StandardRGBEncoder (EDM snapshots, EDM2 snapshots without one, the built-in model), or None with
        `standard_if_missing=False`. The encoder loads nothing until it is used (a StabilityVAEEncoder finds its
        VAE then, or on `init`)."""
        if self.builtin:
            return self._builtin_network(device), _standard_encoder() if standard_if_missing else None
        data = self.load_pickle(trust_pickle_code=trust_pickle_code)
        if not isinstance(data, dict) or 'ema' not in data:
            found = ('keys ' + ', '.join(sorted(map(str, data))) if isinstance(data, dict)
                     else f'a {type(data).__name__}')
            raise PickleLoadError(f'{self.source} has no "ema" network (found {found}); expected an NVlabs EDM or '
                                  'EDM2 training snapshot, dict(ema=..., loss_fn=..., dataset_kwargs=..., and '
                                  'augment_pipe=... (EDM) or encoder=... (EDM2))')
        net = data['ema']
        if not isinstance(net, torch.nn.Module):
            raise PickleLoadError(f'{self.source}: "ema" is a {type(net).__name__}, not a torch.nn.Module')
        net.eval().requires_grad_(False)
        net = with_noise_interface(net if device is None else net.to(device))
        encoder = data.get('encoder')
        if encoder is None:
            return net, _standard_encoder() if standard_if_missing else None
        return net, as_own_class(encoder)

    def _builtin_network(self, device):
        net = _builtin_model(device)
        self._sha256 = sha256_state(net)
        return net


def _standard_encoder():
    from edm_bdia.networks import StandardRGBEncoder  # lazy: importing the networks binds our torch_utils
    return StandardRGBEncoder()


def _builtin_model(device=None):
    from edm_bdia import analytic  # lazy: the analytic models pull in the sampler stack
    return analytic.toy_mixture_32x32_cond(device)


def resolve_checkpoint(source, cache_dir=None, verbose=True):
    """A `Checkpoint` for a preset name, a path, a file:// URL or an http(s) URL (downloaded into the cache
    unless it is there: see edm_bdia.checkpoints.download)."""
    if isinstance(source, Checkpoint):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f'a checkpoint is a preset name, a path or a URL, not a {type(source).__name__}')
    text = os.fspath(source)
    preset = PRESETS.get(text)
    if preset is not None and preset.builtin:
        return Checkpoint(text, preset=preset)
    if preset is not None and preset.file is not None:
        return Checkpoint(text, path=preset.packaged_path(), preset=preset)
    location = preset.url if preset is not None else text
    if is_remote(location):
        return Checkpoint(text, path=open_url(location, cache_dir=cache_dir, verbose=verbose, return_filename=True),
                          url=location, preset=preset)
    path = local_path(location)
    if os.path.isdir(path):
        raise PickleLoadError(_folder_message(path))
    if not os.path.isfile(path):
        raise PickleLoadError(_missing_message(path))
    return Checkpoint(text, path=path, preset=preset)


def _folder_message(path):
    pickles = sorted(name for name in os.listdir(path) if name.endswith('.pkl'))
    if not pickles:
        return f'{path} is a folder, not a checkpoint file, and holds no .pkl file; pass the path of a .pkl file'
    shown = ', '.join(pickles[-3:]) + (f' (and {len(pickles) - 3} more)' if len(pickles) > 3 else '')
    return f'{path} is a folder, not a checkpoint file; pass one of its .pkl files: {shown}'


def _missing_message(path):
    close = difflib.get_close_matches(path, PRESETS, n=3, cutoff=0.75)
    hint = f'; did you mean the preset {" or ".join(close)}?' if close else ''
    return (f'no such file: {path}; pass an existing path, a URL or a preset name (python -m edm_bdia presets)'
            f'{hint}')


def load_pickle(source, trust_pickle_code=False, inert_classes=()):
    """The whole pickle of a preset name, path or URL (see `Checkpoint.load_pickle`)."""
    return resolve_checkpoint(source).load_pickle(trust_pickle_code=trust_pickle_code, inert_classes=inert_classes)


def load_network(source, device=None, trust_pickle_code=False):
    """The `ema` network of a preset name, path or URL, in eval mode, without gradients, on `device`; the name
    'toy-mixture-32x32-cond' gives the built-in analytic model."""
    return resolve_checkpoint(source).load_network(device=device, trust_pickle_code=trust_pickle_code)


def load_network_and_encoder(source, device=None, trust_pickle_code=False):
    """(network, encoder) of a preset name, path or URL (see `Checkpoint.load_network_and_encoder`)."""
    return resolve_checkpoint(source).load_network_and_encoder(device=device, trust_pickle_code=trust_pickle_code)
