"""`open_url`: open a local path, file:// URL or http(s) URL, with a download cache shared with NVlabs' dnnlib.

Cache layout (docs/checkpoints.md, 'Download cache'): a download of URL is stored as
`<cache_dir>/<md5(URL)>_<safe name>`, where the safe name is the Content-Disposition filename or else the URL, with
every character outside `[0-9a-zA-Z-._]` replaced by `_`, cut to 128 characters. A cache hit needs exactly one file
matching `<md5(URL)>_*`, so caches filled by NVlabs' `dnnlib.util.open_url` are reused as they are.

Network behaviour (docs/checkpoints.md, 'Offline use and failures'): with $EDM_BDIA_OFFLINE=1 nothing is fetched (a
cache miss is an error at once). A server that cannot be reached fails after one connection attempt (at most
CONNECT_TIMEOUT_S), with one line naming the URL and the cache file to place it in. Failures after connecting
(server errors, broken transfers, a server that sends nothing for READ_TIMEOUT_S) are retried, each retry announced
on one stderr line, while a retry that stalls too would still end within PATIENCE_S seconds of the start
($EDM_BDIA_DOWNLOAD_PATIENCE sets more or less).
"""

import glob
import hashlib
import io
import os
import re
import sys
import time
import urllib.parse
import urllib.request

import requests
from tqdm import tqdm

from edm_bdia.files import atomic_write
from edm_bdia.files.cache import CONNECT_TIMEOUT_S, OFFLINE_VARIABLE, dnnlib_cache_dir, is_offline

CACHE_DIR_VARIABLE = 'EDM_BDIA_CACHE_DIR'
PATIENCE_VARIABLE = 'EDM_BDIA_DOWNLOAD_PATIENCE'
READ_TIMEOUT_S = 10.0  # a server that sends nothing for this long has stalled (a slow transfer keeps sending)
PATIENCE_S = 60.0  # a download that keeps failing gives up within this, unless $EDM_BDIA_DOWNLOAD_PATIENCE
RETRY_BASE_DELAY_S = 1.0   # retry n (n = 1, 2, ...) waits RETRY_BASE_DELAY_S * 2**(n-1), at most RETRY_MAX_DELAY_S
RETRY_MAX_DELAY_S = 30.0
CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A URL could not be fetched; the message says what to do instead."""


def cache_dir_path(cache_dir=None):
    """Download cache directory: explicit argument > $EDM_BDIA_CACHE_DIR > $DNNLIB_CACHE_DIR/downloads >
    ~/.cache/dnnlib/downloads (dnnlib's default, so existing caches hit)."""
    if cache_dir is not None:
        return str(cache_dir)
    if os.environ.get(CACHE_DIR_VARIABLE):
        return os.environ[CACHE_DIR_VARIABLE]
    return dnnlib_cache_dir('downloads')


def url_md5(url):
    """First part of the cache file name (dnnlib convention)."""
    return hashlib.md5(url.encode('utf-8')).hexdigest()


def safe_name(name):
    """Second part of the cache file name: `[^0-9a-zA-Z-._]` -> `_`, at most 128 characters."""
    return re.sub(r'[^0-9a-zA-Z-._]', '_', name)[:128]


def cache_path(url, cache_dir=None):
    """Where the cache keeps `url` when the server names no file: the place to put a file downloaded elsewhere."""
    return os.path.join(cache_dir_path(cache_dir), f'{url_md5(url)}_{safe_name(url)}')


def cached_file(url, cache_dir=None):
    """Path of the cached download of `url`, or None (a hit needs exactly one `<md5>_*` match)."""
    matches = glob.glob(os.path.join(glob.escape(cache_dir_path(cache_dir)), url_md5(url) + '_*'))
    return matches[0] if len(matches) == 1 else None


def is_url(text):
    """True for `scheme://...` strings with a lowercase scheme (dnnlib's rule; anything else is a path)."""
    return isinstance(text, str) and re.match('^[a-z]+://', text) is not None


def is_remote(text):
    """True for URLs other than file:// (they go through the download cache)."""
    return is_url(text) and not text.startswith('file://')


def file_url_to_path(url):
    """Local path of a file:// URL, including Windows drive letters (file:///C:/x)."""
    path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
    if re.match(r'^[/\\][a-zA-Z]:', path):
        path = path[1:]
    return path


def local_path(location):
    """The file a local path or file:// URL names (not checked)."""
    return file_url_to_path(location) if is_url(location) else location


def open_url(url, cache_dir=None, num_attempts=5, verbose=True, return_filename=False, cache=True):
    """Open `url` (local path, file:// URL or http(s) URL) as a binary file object, or return a local file name
    when `return_filename=True`. Remote files are cached (see the module docstring) unless `cache=False`."""
    if not isinstance(url, (str, os.PathLike)):
        raise TypeError(f'open_url expects a path or URL string, got {type(url).__name__}')
    url = os.fspath(url)
    if not is_remote(url):
        path = local_path(url)
        if os.path.isdir(path):
            raise IsADirectoryError(f'{path} is a folder, not a file')
        if not os.path.isfile(path):
            raise FileNotFoundError(f'no such file: {path}')
        return path if return_filename else open(path, 'rb')
    if return_filename and not cache:
        raise ValueError('open_url: return_filename=True needs cache=True for remote URLs')
    if cache:
        path = cached_file(url, cache_dir) or _fetch(url, num_attempts, verbose, cache_dir_path(cache_dir))
        return path if return_filename else open(path, 'rb')
    return io.BytesIO(_fetch(url, num_attempts, verbose, None))


def _patience():
    """Seconds within which a download that keeps failing gives up: $EDM_BDIA_DOWNLOAD_PATIENCE, else PATIENCE_S."""
    text = os.environ.get(PATIENCE_VARIABLE, '').strip()
    try:
        return float(text) if text else PATIENCE_S
    except ValueError:
        raise DownloadError(f'${PATIENCE_VARIABLE} must be a number of seconds, not {text!r}') from None


def _fetch(url, num_attempts, verbose, cache_dir):
    """Download `url`: into the cache (`cache_dir`; returns the path) or into memory (`cache_dir=None`; returns
    the bytes). One connection attempt; transfers that fail after connecting are retried, each retry announced."""
    place = cache_path(url, cache_dir) if cache_dir is not None else None
    instead = f'place the file at {place}' if place else 'download it yourself and pass its local path'
    if is_offline():
        raise DownloadError(f'cannot download {url}: offline (${OFFLINE_VARIABLE} is set); {instead}')
    num_attempts = max(int(num_attempts), 1)
    deadline = time.monotonic() + _patience()
    for attempt in range(1, num_attempts + 1):
        try:
            return _fetch_once(url, verbose, cache_dir)
        except _CannotConnect as error:
            raise DownloadError(f'cannot download {url}: cannot reach {urllib.parse.urlparse(url).netloc} '
                                f'({error}); {instead}') from None
        except _Transient as error:
            delay = min(RETRY_BASE_DELAY_S * 2 ** (attempt - 1), RETRY_MAX_DELAY_S)
            # A retry starts only if it could still stall for READ_TIMEOUT_S and end before the deadline.
            if attempt == num_attempts or time.monotonic() + delay + READ_TIMEOUT_S > deadline:
                raise DownloadError(f'cannot download {url}: failed {attempt} time(s), last: {error}; try again '
                                    f'later (${PATIENCE_VARIABLE}=SECONDS waits longer) or {instead}') from None
            print(f'download of {url} failed ({error}); retry {attempt} of {num_attempts - 1} in {delay:g} s',
                  file=sys.stderr, flush=True)
            time.sleep(delay)


class _CannotConnect(Exception):
    """No connection to the server (name resolution, refused, connect timeout): retrying will not help soon."""


class _Transient(Exception):
    """The server was reached but the transfer failed (5xx, read timeout, connection lost, short body)."""


def _fetch_once(url, verbose, cache_dir):
    with requests.Session() as session:
        try:
            response = session.get(url, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        except requests.ConnectionError as error:  # includes ConnectTimeout
            raise _CannotConnect(_reason(error)) from None
        except requests.RequestException as error:
            raise _Transient(_reason(error)) from None
        with response:
            if 400 <= response.status_code < 500:  # the file is not there: retrying will not help
                raise DownloadError(f'cannot download {url}: HTTP {response.status_code} {response.reason}; '
                                    'check the URL')
            if response.status_code >= 500:
                raise _Transient(f'HTTP {response.status_code} {response.reason}')
            try:
                return _receive(url, response, verbose, cache_dir)
            except requests.RequestException as error:
                raise _Transient(_reason(error)) from None


def _reason(error):
    """The innermost reason of a requests error, without urllib3's object reprs ("Failed to resolve 'host' (...)",
    "... Connection refused")."""
    inner = error.args[0] if error.args else error
    inner = getattr(inner, 'reason', inner)  # urllib3's MaxRetryError wraps the real cause
    if isinstance(inner, BaseException) and inner.args and isinstance(inner.args[0], str):
        inner = inner.args[0]  # ProtocolError(message, cause) and the like
    text = re.sub(r"^<[^>]*>: |^\w+\(host=[^)]*\): ", '', str(inner))
    return text or type(error).__name__


def _receive(url, response, verbose, cache_dir):
    disposition = re.search(r'filename="([^"]*)"', response.headers.get('Content-Disposition', ''))
    name = safe_name(disposition.group(1) if disposition else url)
    if cache_dir is None:
        buffer = io.BytesIO()
        _stream(response, buffer, name, verbose)
        return buffer.getvalue()
    os.makedirs(cache_dir, exist_ok=True)
    final_path = os.path.join(cache_dir, f'{url_md5(url)}_{name}')
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
        raise _Transient(f'connection ended after {received} of {total} bytes')
