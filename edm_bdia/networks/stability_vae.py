"""Find and load the Stable Diffusion VAE that EDM2's latent (img512) models decode with (docs/checkpoints.md,
'The Stability VAE').

The VAE is diffusers' `AutoencoderKL` (optional: `pip install -e ".[latent]"`). Its weights are never in an EDM2
pickle; they come from, in this order: a local folder (the `vae_dir` argument, else $EDM_BDIA_VAE_DIR) holding a
diffusers model (`config.json` and the weights), else the Hugging Face cache that NVlabs' code fills, under
dnnlib's cache folder `diffusers` ($DNNLIB_CACHE_DIR/diffusers or ~/.cache/dnnlib/diffusers), else a download from
the Hugging Face Hub into that cache (not with $EDM_BDIA_OFFLINE; after one connection attempt, like
edm_bdia.checkpoints.download). When none works, one error names both places.
"""

import os
import re
import socket
import urllib.parse
import warnings

from edm_bdia.files.cache import CONNECT_TIMEOUT_S, dnnlib_cache_dir, is_offline

VAE_DIR_VARIABLE = 'EDM_BDIA_VAE_DIR'
HUB_ID = re.compile(r'^[A-Za-z0-9][\w.-]*/[\w.-]+$')  # 'owner/name': a stored name is never a local path


class VAEUnavailableError(RuntimeError):
    """The VAE cannot be used here: diffusers is not installed, or its weights are neither in the given folder nor
    in the cache (and cannot be downloaded). The message says what to do."""


def vae_cache_dir():
    """The Hugging Face cache NVlabs' code downloads the VAE into: dnnlib's cache folder `diffusers`."""
    return dnnlib_cache_dir('diffusers')


def autoencoder_class():
    """diffusers' AutoencoderKL, or VAEUnavailableError naming the extra to install."""
    try:
        from diffusers.models import AutoencoderKL  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise VAEUnavailableError(f'latent models decode with diffusers\' AutoencoderKL, which cannot be imported '
                                  f'({error}); install it with pip install -e ".[latent]" (or pip install diffusers)'
                                  ) from None
    return AutoencoderKL


def load_stability_vae(vae_name, device, vae_dir=None):
    """The VAE `vae_name` (a Hub id such as 'stabilityai/sd-vae-ft-mse') as an AutoencoderKL in eval mode without
    gradients on `device`, from `vae_dir` (or $EDM_BDIA_VAE_DIR) when given, else from the cache (downloaded there
    unless offline)."""
    autoencoder = autoencoder_class()
    vae_dir = vae_dir if vae_dir is not None else os.environ.get(VAE_DIR_VARIABLE) or None
    if vae_dir is not None:
        vae = _from_folder(autoencoder, os.fspath(vae_dir), vae_name)
    else:
        vae = _from_cache(autoencoder, vae_name)
    return vae.eval().requires_grad_(False).to(device)


def _from_folder(autoencoder, folder, vae_name):
    if not os.path.isfile(os.path.join(folder, 'config.json')):
        raise VAEUnavailableError(f'the VAE folder {folder} holds no diffusers model (no config.json); download '
                                  f'{vae_name} there (e.g. huggingface-cli download {vae_name} --local-dir '
                                  f'{folder}) or unset ${VAE_DIR_VARIABLE} to use the cache {vae_cache_dir()}')
    try:
        return _pretrained(autoencoder, folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise VAEUnavailableError(f'cannot load the VAE from {folder}: {error}') from None


def _from_cache(autoencoder, vae_name):
    if not HUB_ID.match(vae_name):
        raise VAEUnavailableError(f'the encoder names the VAE {vae_name!r}, which is not a Hugging Face Hub id '
                                  f'(owner/name); name the folder that holds it in ${VAE_DIR_VARIABLE} (or init\'s vae_dir)')
    cache_dir = vae_cache_dir()
    try:
        return _pretrained(autoencoder, vae_name, cache_dir=cache_dir, local_files_only=True)
    except (OSError, ValueError):
        pass  # not cached (diffusers raises OSError or EnvironmentError subclasses)
    reason = ' (offline: $EDM_BDIA_OFFLINE is set)' if is_offline() else _hub_unreachable()
    if not reason:
        try:
            return _pretrained(autoencoder, vae_name, cache_dir=cache_dir)
        except (OSError, ValueError) as error:
            reason = f' and could not be downloaded ({type(error).__name__})'
    raise VAEUnavailableError(f'the VAE {vae_name} is not in the Hugging Face cache {cache_dir}{reason}; download '
                              f'it there (python -c "from diffusers.models import AutoencoderKL; '
                              f'AutoencoderKL.from_pretrained(\'{vae_name}\', cache_dir=\'{cache_dir}\')") or into a '
                              f'folder named in ${VAE_DIR_VARIABLE} (or init\'s vae_dir)')


def _hub_unreachable():
    """'' when the Hugging Face Hub accepts a connection within CONNECT_TIMEOUT_S, else why not (one attempt:
    the Hub client would retry for half a minute)."""
    endpoint = urllib.parse.urlsplit(os.environ.get('HF_ENDPOINT') or 'https://huggingface.co')
    host = endpoint.hostname
    try:
        socket.create_connection((host, endpoint.port or (80 if endpoint.scheme == 'http' else 443)),
                                 timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        return f' and {host} cannot be reached ({error})'
    return ''


def _pretrained(autoencoder, name_or_folder, **kwargs):
    """AutoencoderKL.from_pretrained without its notices: low_cpu_mem_usage=False (otherwise diffusers asks for
    `accelerate`), and its deprecation warnings of Hub arguments it passes itself silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        warnings.simplefilter('ignore', FutureWarning)
        return autoencoder.from_pretrained(name_or_folder, low_cpu_mem_usage=False, **kwargs)
