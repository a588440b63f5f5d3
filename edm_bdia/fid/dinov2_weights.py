"""Find and load Meta's DINOv2 ViT-L/14 weights for the FD_DINOv2 detector, never running downloaded code
(docs/fid.md, 'DINOv2 weights').

Resolution order, first hit wins:

1. an explicit path or URL (`dinov2`; a URL goes through the download cache);
2. the torch hub cache that NVlabs' EDM2 ``calculate_metrics.py`` fills (``torch.hub`` pointed at dnnlib's cache:
   ``$DNNLIB_CACHE_DIR/torch_hub``, else ``~/.cache/dnnlib/torch_hub``), then torch's own hub cache
   (``torch.hub.get_dir()``: ``$TORCH_HOME/hub``, else ``~/.cache/torch/hub``), each under
   ``checkpoints/dinov2_vitl14_pretrain.pth``;
3. the package's download cache (edm_bdia.checkpoints.download) holding Meta's URL;
4. downloading Meta's URL into that cache (not with $EDM_BDIA_OFFLINE=1).

The file is a plain state dict, read with ``torch.load(weights_only=True)``: tensors only, no code. Its layout must
be DINOv2's ViT (edm_bdia.fid.dinov2) exactly; the architecture (width, depth, patch size, position grid) is read
from the tensor shapes. Errors are ``DINOv2WeightsError``s for the argument ``dinov2``.
"""

import os
import pickle
import re
import zipfile

import torch

from edm_bdia.checkpoints.download import DownloadError, cache_path, cached_file, open_url
from edm_bdia.files.cache import dnnlib_cache_dir
from edm_bdia.fid.dinov2 import HEAD_DIM, VITL14, DinoVisionTransformer
from edm_bdia.fid.dinov2_detector import DINOv2Detector
from edm_bdia.fid.errors import FidArgumentError
from edm_bdia.fid.named_weights import named_weights_file
from edm_bdia.fid.torchscript_weights import is_torchscript_archive

DEFAULT_DINOV2 = 'dinov2_vitl14'
DINOV2_FILE = 'dinov2_vitl14_pretrain.pth'
DINOV2_URL = f'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/{DINOV2_FILE}'
REQUIRED_KEYS = ('cls_token', 'pos_embed', 'patch_embed.proj.weight', 'norm.weight')
_BLOCK_KEY = re.compile(r'^blocks\.(\d+)\.norm1\.weight$')


class DINOv2WeightsError(FidArgumentError):
    """No usable DINOv2 weights, or a file that is not DINOv2 ViT weights (argument `dinov2`)."""


def _weights_error(origin, problem):
    return DINOv2WeightsError('dinov2', f'{origin}: {problem}')


def hub_cache_files():
    """Where earlier torch.hub runs keep Meta's file: NVlabs' EDM2 (torch hub inside dnnlib's cache), then torch's
    own hub directory."""
    return [os.path.join(dnnlib_cache_dir('torch_hub'), 'checkpoints', DINOV2_FILE),
            os.path.join(torch.hub.get_dir(), 'checkpoints', DINOV2_FILE)]


def _no_weights_error(download_error):
    return _weights_error(DEFAULT_DINOV2, (
        f'no DINOv2 ViT-L/14 weights found; download {DINOV2_URL} elsewhere and place it at '
        f'{cache_path(DINOV2_URL)} (or pass its path as `dinov2`) ({download_error})'))


def resolve_dinov2_weights(spec=None):
    """(path, source) of the weights file; see the module docstring for the order. `spec` may be a path, a URL or
    ``dinov2_vitl14`` (the default)."""
    if spec not in (None, DEFAULT_DINOV2):
        return named_weights_file(spec, DEFAULT_DINOV2, _weights_error)
    for path in hub_cache_files():
        if os.path.isfile(path):
            return path, 'torch hub cache'
    path = cached_file(DINOV2_URL)
    if path is not None:
        return path, 'cache'
    try:
        return open_url(DINOV2_URL, return_filename=True), 'download'
    except DownloadError as exc:
        raise _no_weights_error(exc) from None


def read_state_dict(path):
    """The tensors of a weights file in torch.save's zip format, read without running code (torch.load with
    weights_only=True)."""
    damaged = f'truncated or corrupt? delete it and get it again: {DINOV2_URL}'
    if os.path.isdir(path):
        raise _weights_error(path, 'a folder; pass the weights file itself')
    if not zipfile.is_zipfile(path):
        raise _weights_error(path, f'not a PyTorch weights file in torch.save\'s zip format ({damaged})')
    with zipfile.ZipFile(path) as archive:
        if is_torchscript_archive(archive.namelist()):
            raise _weights_error(path, "a TorchScript module, not a state dict of DINOv2 weights like Meta's file")
    try:
        state = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain containers
        raise _weights_error(path, 'holds objects other than tensors, and unpickling those could run code; '
                                   'refused') from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).strip().split('. ')[0] or type(exc).__name__
        raise _weights_error(path, f'cannot be read ({damaged}): {reason}') from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise _weights_error(path, 'not a state dict (a mapping of names to tensors)')
    return state


def _architecture(state, origin):
    """DinoVisionTransformer keyword arguments from the tensor shapes of a DINOv2 state dict."""
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        found = ', '.join(list(state)[:3]) or 'nothing'
        raise _weights_error(origin, f'not DINOv2 ViT weights: no {", ".join(missing)} (found {found}, ...)')
    embed_dim = state['cls_token'].shape[-1]
    positions = state['pos_embed'].shape[1] - 1
    grid = int(round(positions ** 0.5))
    if embed_dim % HEAD_DIM or grid * grid != positions:
        raise _weights_error(origin, f'not DINOv2 ViT weights: width {embed_dim} (DINOv2 uses multiples of '
                                     f'{HEAD_DIM}), {positions} position embeddings (DINOv2 uses a square grid)')
    depth = sum(1 for key in state if _BLOCK_KEY.match(key))
    return dict(embed_dim=embed_dim, depth=depth, patch_size=state['patch_embed.proj.weight'].shape[-1],
                position_grid=grid)


def architecture_name(architecture):
    """'ViT-L/14' for Meta's ViT-L/14, else the numbers ('ViT 128 wide, 2 blocks, patch 14, grid 4')."""
    if architecture == VITL14:
        return 'ViT-L/14'
    return (f'ViT {architecture["embed_dim"]} wide, {architecture["depth"]} blocks, patch '
            f'{architecture["patch_size"]}, grid {architecture["position_grid"]}')


def dinov2_from_state_dict(state, origin):
    """(DinoVisionTransformer holding `state` exactly (strict), its architecture name)."""
    architecture = _architecture(state, origin)
    with torch.device('meta'):  # no memory for the placeholder weights: `assign` takes the file's tensors
        network = DinoVisionTransformer(**architecture)
    try:
        network.load_state_dict({key: value.to(torch.float32) for key, value in state.items()}, strict=True,
                                assign=True)
    except RuntimeError as exc:
        problem = ' '.join(str(exc).split('\n\t')[1:2]) or str(exc).splitlines()[0]
        raise _weights_error(origin, f'does not fit the DINOv2 {architecture_name(architecture)} layout: '
                                     f'{problem.strip()}') from None
    return network, architecture_name(architecture)


def load_dinov2_detector_with_info(spec=None, device='cpu', resize_mode='torch', precision='fp32'):
    """(DINOv2Detector in eval mode on `device`, identity dict: name, source, path, bytes, architecture,
    resize_mode, precision)."""
    path, source = resolve_dinov2_weights(spec)
    backbone, architecture = dinov2_from_state_dict(read_state_dict(path), path)
    detector = DINOv2Detector(backbone, resize_mode=resize_mode, precision=precision)
    detector = detector.eval().requires_grad_(False).to(device)
    info = dict(name=DEFAULT_DINOV2 if spec in (None, DEFAULT_DINOV2) else os.fspath(spec), source=source,
                path=os.path.abspath(path), bytes=os.path.getsize(path), architecture=architecture,
                resize_mode=resize_mode, precision=precision)
    return detector, info
