"""Load k-diffusion's `k_diffusion/sampling.py` on its own, without the rest of the k-diffusion package.

k-diffusion's `__init__` imports every module of the package (models, training, evaluation), and with them
torchvision, CLIP, wandb, kornia, scikit-image and more, none of which its samplers use. The samplers need only
torch, scipy, tqdm, torchsde, torchdiffeq and one helper from `k_diffusion.utils` (`append_dims`). So we read the
installed `sampling.py` file (`pip install --no-deps k-diffusion`) as a module of a private package whose `utils`
provides that one helper, and never run k-diffusion's `__init__`.
"""

import importlib.util
import os
import sys
import types

PRIVATE_PACKAGE = '_edm_bdia_k_diffusion'
INSTALL_HINT = ('pip install --no-deps k-diffusion==0.1.1.post1 && pip install torchsde==0.2.6 torchdiffeq==0.2.5 '
                '(or: pip install "edm_bdia[kdiffusion]" for the last two)')


def append_dims(x, target_dims):
    """`x` with trailing singleton dimensions added until it has `target_dims` dimensions."""
    missing = target_dims - x.ndim
    if missing < 0:
        raise ValueError(f'append_dims: the tensor has {x.ndim} dimensions, more than target_dims = {target_dims}')
    return x[(...,) + (None,) * missing]


def _installed_sampling_file():
    """Path of the installed `k_diffusion/sampling.py`, found without importing the `k_diffusion` package."""
    spec = importlib.util.find_spec('k_diffusion')  # a top-level name: finding it does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f'k-diffusion is not installed; install it with: {INSTALL_HINT}')
    path = os.path.join(list(spec.submodule_search_locations)[0], 'sampling.py')
    if not os.path.isfile(path):
        raise ImportError(f'the installed k-diffusion has no k_diffusion/sampling.py ({path}); reinstall with: '
                          f'{INSTALL_HINT}')
    return path


def _private_package():
    """The package k-diffusion's `from . import utils` resolves against: a `utils` with `append_dims` only."""
    package = types.ModuleType(PRIVATE_PACKAGE)
    package.__path__ = []
    utils = types.ModuleType(f'{PRIVATE_PACKAGE}.utils')
    utils.append_dims = append_dims
    package.utils = utils
    return package, utils


def load_sampling():
    """k-diffusion's sampling module (`sample_heun`, `sample_dpmpp_2m`, `get_sigmas_karras`, ...), loaded once.

    Raises ImportError with the install line when k-diffusion or one of its samplers' requirements is missing.
    """
    name = f'{PRIVATE_PACKAGE}.sampling'
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _installed_sampling_file())
    module = importlib.util.module_from_spec(spec)
    package, utils = _private_package()
    sys.modules.update({PRIVATE_PACKAGE: package, utils.__name__: utils, name: module})
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        for key in (name, utils.__name__, PRIVATE_PACKAGE):
            sys.modules.pop(key, None)
        raise ImportError(f"k-diffusion's sampling.py needs {error.name!r}, which is not installed; install with: "
                          f'{INSTALL_HINT}') from error
    package.sampling = module
    return module
