"""Which network a generation run uses: a loaded module, the built-in model, or a checkpoint (preset, path, URL),
with the identity the manifest records (the sha256 of the checkpoint file, or of a module's tensors)."""

import dataclasses

import torch

from edm_bdia.analytic import TOY_MODEL_NAME
from edm_bdia.errors import ArgumentError


@dataclasses.dataclass(frozen=True)
class NetworkSource:
    """A network given to the engine: `module` (already loaded) or `name` (preset, path, URL, built-in model)."""
    label: str
    module: object = None

    @classmethod
    def of(cls, network):
        if isinstance(network, str):
            return cls(label=network)
        if callable(network) and all(hasattr(network, attr) for attr in ('img_channels', 'img_resolution',
                                                                          'label_dim', 'round_sigma')):
            return cls(label=type(network).__name__, module=network)
        raise TypeError(f'network must be a preset name, a path or URL of an NVlabs pickle, or a loaded network, '
                        f'not {type(network).__name__}')

    def sha256(self, net):
        """sha256 of the checkpoint file (from the download cache), or of the tensors of a module without file."""
        from edm_bdia.checkpoints.download import open_url
        from edm_bdia.files import sha256_file
        from edm_bdia.checkpoints.hashing import sha256_state
        from edm_bdia.checkpoints.presets import PRESETS
        if self.module is not None or self.label == TOY_MODEL_NAME:
            return sha256_state(net)
        location = PRESETS[self.label].url if self.label in PRESETS else self.label
        return sha256_file(open_url(location, return_filename=True, verbose=False))


def open_network(source, device, trust_pickle_code=False):
    """The network of `source` on `device`, in eval mode (a loaded module is moved there, not copied)."""
    if source.module is not None:
        module = source.module
        return module.to(device) if isinstance(module, torch.nn.Module) else module
    from edm_bdia.checkpoints.download import DownloadError
    from edm_bdia.checkpoints.source import load_network
    from edm_bdia.checkpoints.unpickle import PickleLoadError
    try:
        return load_network(source.label, device=device, trust_pickle_code=trust_pickle_code)
    except (PickleLoadError, DownloadError, OSError) as exc:
        raise ArgumentError('network', f'{source.label}: {exc}') from None
