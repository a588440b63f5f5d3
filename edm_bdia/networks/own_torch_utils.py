"""Find edm_bdia's own `torch_utils`, even when another project's `torch_utils` comes first on sys.path.

StyleGAN2-ADA, StyleGAN3, EDM and EDM2 checkouts all ship a top-level `torch_utils`; whichever is first on
sys.path wins a plain `import torch_utils`. The loaders therefore never rely on that name: our package is
imported from its files under the private name `_edm_bdia_torch_utils` when the public name belongs to someone
else, and `sys.modules['torch_utils']` is pointed at ours only for the duration of `aliased_torch_utils()`
(importing edm_bdia.networks, writing NVlabs-format pickles). See docs/checkpoints.md, 'A foreign torch_utils'.
"""

import contextlib
import importlib
import importlib.util
import os
import sys

PRIVATE_NAME = '_edm_bdia_torch_utils'
# torch_utils/ sits beside edm_bdia/ (in the checkout and in site-packages); this file is edm_bdia/networks/x.py
OWN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'torch_utils')
SUBMODULES = ('persistence', 'misc')


def _is_ours(origin):
    return origin is not None and os.path.dirname(os.path.abspath(origin)) == OWN_DIR


def own_torch_utils():
    """Our `torch_utils` package module with its `persistence` and `misc` submodules loaded."""
    public = sys.modules.get('torch_utils')
    if public is not None:
        origin = getattr(public, '__file__', None)
    else:
        spec = importlib.util.find_spec('torch_utils')  # locates without executing a foreign package
        origin = spec.origin if spec is not None else None
    name = 'torch_utils' if _is_ours(origin) else PRIVATE_NAME
    if name == PRIVATE_NAME and PRIVATE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PRIVATE_NAME, os.path.join(OWN_DIR, '__init__.py'), submodule_search_locations=[OWN_DIR])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PRIVATE_NAME] = package
        spec.loader.exec_module(package)
    package = importlib.import_module(name)
    for submodule in SUBMODULES:
        importlib.import_module(f'{name}.{submodule}')
    return package


def own_persistence():
    """Our `torch_utils.persistence` module (see own_torch_utils)."""
    return own_torch_utils().persistence


@contextlib.contextmanager
def aliased_torch_utils():
    """Point `torch_utils[.persistence|.misc]` at our package inside the block, restoring what was there."""
    package = own_torch_utils()
    aliases = {'torch_utils': package}
    aliases.update({f'torch_utils.{sub}': getattr(package, sub) for sub in SUBMODULES})
    saved = {name: sys.modules.get(name) for name in aliases}
    sys.modules.update(aliases)
    try:
        yield package
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
