"""`open_url`: open a local path, file:// URL or http(s) URL, with a download cache shared with NVlabs' dnnlib.

Cache layout (edm-format.md §4.6): a download of URL is stored as `<cache_dir>/<md5(URL)>_<safe name>`, where
the safe name is the Content-Disposition filename or else the URL, with every character outside
`[0-9a-zA-Z-._]` replaced by `_`, cut to 128 characters. A cache hit needs exactly one file matching
`<md5(URL)>_*`, so caches filled by NVlabs' `dnnlib.util.open_url` are reused as they are.
"""

import glob
import hashlib
import io
import os
import re
import tempfile
import time
import urllib.parse
import urllib.request

import requests
from tqdm import tqdm

from edm_bdia.files import atomic_write

CACHE_DIR_VARIABLE = 'EDM_BDIA_CACHE_DIR'
DNNLIB_CACHE_DIR_VARIABLE = 'DNNLIB_CACHE_DIR'
RETRY_BASE_DELAY_S = 1.0   # retry n (n = 0, 1, ...) waits RETRY_BASE_DELAY_S * 2**n, at most RETRY_MAX_DELAY_S
RETRY_MAX_DELAY_S = 30.0
CHUNK_BYTES = 1 << 20


class DownloadError(Exception):
    """A URL could not be fetched; the message says what to do instead."""


def cache_dir_path(cache_dir=None):
    """Download cache directory: explicit argument > $EDM_BDIA_CACHE_DIR > $DNNLIB_CACHE_DIR/downloads >
    ~/.cache/dnnlib/downloads (dnnlib's default, so existing caches hit)."""
    if cache_dir is not None:
        return str(cache_dir)
    if os.environ.get(CACHE_DIR_VARIABLE):
        return os.environ[CACHE_DIR_VARIABLE]
    if os.environ.get(DNNLIB_CACHE_DIR_VARIABLE):
        return os.path.join(os.environ[DNNLIB_CACHE_DIR_VARIABLE], 'downloads')
    home = os.path.expanduser('~')
    base = home if home != '~' else tempfile.gettempdir()
    return os.path.join(base, '.cache', 'dnnlib', 'downloads')


def url_md5(url):
    """First part of the cache file name (dnnlib convention)."""
    return hashlib.md5(url.encode('utf-8')).hexdigest()


def safe_name(name):
    """Second part of the cache file name: `[^0-9a-zA-Z-._]` -> `_`, at most 128 characters."""
    return re.sub(r'[^0-9a-zA-Z-._]', '_', name)[:128]


def cached_file(url, cache_dir=None):
    """Path of the cached download of `url`, or None (a hit needs exactly one `<md5>_*` match)."""
    matches = glob.glob(os.path.join(glob.escape(cache_dir_path(cache_dir)), url_md5(url) + '_*'))
    return matches[0] if len(matches) == 1 else None


def is_url(text):
    """True for `scheme://...` strings with a lowercase scheme (dnnlib's rule; anything else is a path)."""
    return isinstance(text, str) and re.match('^[a-z]+://', text) is not None


def file_url_to_path(url):
    """Local path of a file:// URL, including Windows drive letters (file:///C:/x)."""
    path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
    if re.match(r'^[/\\][a-zA-Z]:', path):
        path = path[1:]
    return path


def open_url(url, cache_dir=None, num_attempts=10, verbose=True, return_filename=False, cache=True):
    """Open `url` (local path, file:// URL or http(s) URL) as a binary file object, or return a local file name
    when `return_filename=True`. Remote files are cached (see the module docstring) unless `cache=False`."""
    if not isinstance(url, (str, os.PathLike)):
        raise TypeError(f'open_url expects a path or URL string, got {type(url).__name__}')
    url = os.fspath(url)
    if not is_url(url) or url.startswith('file://'):
        path = file_url_to_path(url) if is_url(url) else url
        if not os.path.isfile(path):
            raise FileNotFoundError(f'no such file: {path}')
        return path if return_filename else open(path, 'rb')
    if return_filename and not cache:
        raise ValueError('open_url: return_filename=True needs cache=True for remote URLs')
    if cache:
        path = cached_file(url, cache_dir) or _download(url, cache_dir_path(cache_dir), num_attempts, verbose)
        return path if return_filename else open(path, 'rb')
    return io.BytesIO(_fetch(url, num_attempts, verbose, sink=None))


def _download(url, cache_dir, num_attempts, verbose):
    """Download `url` into the cache atomically (temp file in the cache dir, then os.replace); return the path."""
    os.makedirs(cache_dir, exist_ok=True)
    return _fetch(url, num_attempts, verbose, sink=cache_dir)


def _fetch(url, num_attempts, verbose, sink):
    """Fetch with retries. `sink=None`: return the bytes; else `sink` is the cache dir and the path is returned."""
    host = urllib.parse.urlparse(url).netloc
    last_error = None
    for attempt in range(max(int(num_attempts), 1)):
        if attempt:
            time.sleep(min(RETRY_BASE_DELAY_S * 2 ** (attempt - 1), RETRY_MAX_DELAY_S))
        try:
            with requests.Session() as session, session.get(url, stream=True, timeout=(10, 60)) as response:
                if 400 <= response.status_code < 500:  # the file is not there: retrying will not help
                    raise DownloadError(f'{url}: HTTP {response.status_code} {response.reason}; check the URL')
                response.raise_for_status()
                return _receive(url, response, verbose, sink)
        except (requests.ConnectionError, requests.Timeout) as error:
            last_error = DownloadError(
                f'cannot reach {host} ({type(error).__name__}); pass a local path or set ${CACHE_DIR_VARIABLE} '
                f'(or ${DNNLIB_CACHE_DIR_VARIABLE}) to a cache that holds {url_md5(url)}_{safe_name(url)}')
        except (requests.RequestException, _IncompleteDownload) as error:
            last_error = DownloadError(f'download of {url} failed after {attempt + 1} attempt(s) ({error}); try '
                                       'again later, or download the file yourself and pass its local path')
    raise last_error


class _IncompleteDownload(Exception):
    """The connection ended before Content-Length bytes arrived."""


def _receive(url, response, verbose, sink):
    disposition = re.search(r'filename="([^"]*)"', response.headers.get('Content-Disposition', ''))
    name = safe_name(disposition.group(1) if disposition else url)
    if sink is None:
        buffer = io.BytesIO()
        _stream(response, buffer, name, verbose)
        return buffer.getvalue()
    final_path = os.path.join(sink, f'{url_md5(url)}_{name}')
    # The temporary name starts with '.', so it never matches an '<md5>_*' cache lookup.
    atomic_write(final_path, lambda out: _stream(response, out, name, verbose))
    return final_path


def _stream(response, out, name, verbose):
    """Copy the response body to `out` with a progress bar; fail unless Content-Length bytes arrived."""
    total = int(response.headers.get('Content-Length', 0)) or None
    received = 0
    with tqdm(total=total, unit='B', unit_scale=True, desc=name, disable=not verbose, leave=False) as bar:
        for chunk in response.iter_content(CHUNK_BYTES):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise _IncompleteDownload(f'got {received} of {total} bytes')
