"""Which network a run uses: a loaded module, or a checkpoint (preset, path, URL, the built-in model)
resolved and read once, with the identity the manifest records (the sha256 of the checkpoint file, hashed while it
was read, or of a module's tensors)."""

import dataclasses
import os

import torch

from edm_bdia.errors import ArgumentError


@dataclasses.dataclass(frozen=True)
class OpenedNetwork:
    """The network, the label the run reports it by, its sha256, and the encoder its snapshot carries between
    images and the network's space (EDM2), or None: pixels v / 127.5 - 1 in float64 (EDM snapshots, the
    built-in model, loaded modules; edm_bdia.runs.images)."""
    net: object
    label: str
    sha256: str
    encoder: object = None


def _is_network(value):
    return callable(value) and all(hasattr(value, attr) for attr in ('img_channels', 'img_resolution', 'label_dim',
                                                                      'round_sigma'))


def open_network(network, device, trust_pickle_code=False, argument='network'):
    """`network` (a preset name, path or URL of an NVlabs pickle, the built-in model's name, or a loaded network)
    on `device`, in eval mode. A loaded module is moved there, not copied. Errors name `argument`."""
    from edm_bdia.checkpoints import DownloadError, PickleLoadError, resolve_checkpoint, sha256_state
    if _is_network(network):
        net = network.to(device) if isinstance(network, torch.nn.Module) else network
        return OpenedNetwork(net, type(network).__name__, sha256_state(net) if isinstance(net, torch.nn.Module)
                             else type(network).__qualname__)
    if isinstance(network, os.PathLike):
        network = os.fspath(network)
    if not isinstance(network, str):
        raise ArgumentError(argument, f'must be a preset name, a path or URL of an NVlabs pickle, or a loaded '
                                      f'network, not {type(network).__name__}')
    try:
        checkpoint = resolve_checkpoint(network)
        net, encoder = checkpoint.load_network_and_encoder(device=device, trust_pickle_code=trust_pickle_code,
                                                            standard_if_missing=False)
    except (PickleLoadError, DownloadError, OSError) as exc:
        raise ArgumentError(argument, f'{network}: {exc}') from None
    return OpenedNetwork(net, network, checkpoint.sha256, encoder)
