"""A detector's weights file named by the user (Inception's `detector`, DINOv2's `dinov2`): a local path, a file://
URL, or a URL downloaded once through the download cache (edm_bdia.checkpoints.download)."""

import os

from edm_bdia.checkpoints.download import DownloadError, is_remote, local_path, open_url


def named_weights_file(spec, default_name, error):
    """(path, 'file' or 'url') of the file `spec` names. Failures raise `error(spec, problem)`, the caller's
    exception for its argument; `default_name` is the name that means the default weights instead."""
    spec = os.fspath(spec)
    if is_remote(spec):
        try:
            return open_url(spec, return_filename=True), 'url'
        except DownloadError as exc:
            raise error(spec, str(exc)) from None
    path = local_path(spec)
    if not os.path.exists(path):
        raise error(spec, f'not a file, a URL or {default_name!r}')
    return path, 'file'
