"""edm_bdia.checkpoints.download.open_url against a local HTTP server on 127.0.0.1 (no internet needed): the
dnnlib-compatible cache, fast failure without a connection, announced retries, the offline switch."""

import http.server
import os
import socket
import threading
import time

import pytest

from edm_bdia.checkpoints import download
from edm_bdia.checkpoints.download import DownloadError, open_url

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    requests = []  # paths served, shared by the test through the class

    def do_GET(self):  # noqa: N802 (http.server naming)
        _Handler.requests.append(self.path)
        if self.path.startswith('/missing'):
            self.send_error(404)
            return
        if self.path.startswith('/stalled'):  # accept, then never answer (not time.sleep: the tests stub it)
            threading.Event().wait(30)
            return
        if self.path.startswith('/flaky') and _Handler.requests.count(self.path) < 3:  # two failures, then the file
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(PAYLOAD)))
        if self.path.startswith('/named'):
            self.send_header('Content-Disposition', 'attachment; filename="weights v2.pkl"')
        self.end_headers()
        if self.path.startswith('/interrupted'):  # promise the whole payload, send half, hang up
            self.wfile.write(PAYLOAD[:len(PAYLOAD) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory through $EDM_BDIA_CACHE_DIR; online; retries without waiting; a fresh request log."""
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('EDM_BDIA_OFFLINE', raising=False)
    monkeypatch.setattr(download.time, 'sleep', lambda seconds: None)
    _Handler.requests.clear()
    return tmp_path / 'cache'


def test_dnnlib_cache_name_of_a_published_checkpoint():
    url = 'https://nvlabs-fi-cdn.nvidia.com/edm/pretrained/edm-cifar10-32x32-cond-vp.pkl'
    name = f'{download.url_md5(url)}_{download.safe_name(url)}'  # what dnnlib.util.open_url names it
    assert name == ('8a0cade18e36ff627fc6c7a9dce1bd11_'
                    'https___nvlabs-fi-cdn.nvidia.com_edm_pretrained_edm-cifar10-32x32-cond-vp.pkl')
    assert download.safe_name('a' * 200) == 'a' * 128


def test_second_call_hits_the_cache(server, cache):
    url = f'{server}/weights.pkl'
    with open_url(url, verbose=False) as file:
        assert file.read() == PAYLOAD
    path = open_url(url, verbose=False, return_filename=True)
    assert _Handler.requests == ['/weights.pkl']  # one request for two calls
    assert os.listdir(cache) == [os.path.basename(path)]
    assert os.path.basename(path) == f'{download.url_md5(url)}_{download.safe_name(url)}'


def test_content_disposition_names_the_cache_file(server, cache):
    url = f'{server}/named?id=7'
    path = open_url(url, verbose=False, return_filename=True)
    assert os.path.basename(path) == f'{download.url_md5(url)}_weights_v2.pkl'
    assert open_url(url, verbose=False, return_filename=True) == path and len(_Handler.requests) == 1


def test_interrupted_download_is_retried_with_one_line_per_retry_and_leaves_no_cache_entry(server, cache, capsys):
    url = f'{server}/interrupted.pkl'
    with pytest.raises(DownloadError) as error:
        open_url(url, num_attempts=3, verbose=False)
    message = str(error.value)
    assert message.startswith(f'cannot download {url}: failed 3 time(s), last: ')
    assert message.endswith('; try again later ($EDM_BDIA_DOWNLOAD_PATIENCE=SECONDS waits longer) or place the file '
                            f'at {download.cache_path(url)}')
    assert '524288' in message and '\n' not in message  # the reason: half of the bytes arrived
    assert _Handler.requests == ['/interrupted.pkl'] * 3
    retries = capsys.readouterr().err.splitlines()
    assert len(retries) == 2 and all(line.startswith(f'download of {url} failed (') for line in retries)
    assert [line.rsplit(')', 1)[1] for line in retries] == ['; retry 1 of 2 in 1 s', '; retry 2 of 2 in 2 s']
    assert os.listdir(cache) == []  # neither a partial file nor a temp file


def test_server_errors_are_retried_until_the_file_comes(server, cache, capsys):
    path = open_url(f'{server}/flaky.pkl', verbose=False, return_filename=True)
    assert open(path, 'rb').read() == PAYLOAD and _Handler.requests == ['/flaky.pkl'] * 3
    assert [line.split(' failed ')[1] for line in capsys.readouterr().err.splitlines()] == [
        '(HTTP 503 Service Unavailable); retry 1 of 4 in 1 s', '(HTTP 503 Service Unavailable); retry 2 of 4 in 2 s']


def test_a_stalled_server_is_noticed_after_the_read_timeout_and_given_up_within_the_patience(server, cache,
                                                                                             monkeypatch):
    """A server that accepts and never answers: each attempt ends after READ_TIMEOUT_S without a byte, and a retry
    starts only if it could stall as long and still end within PATIENCE_S (here $EDM_BDIA_DOWNLOAD_PATIENCE); both
    scaled down here (and the waits between attempts, 1 s then 2 s, are skipped but counted). Read timeout 0.3 s,
    patience 2.5 s: after attempt 1 a second could end by 0.3 + 1 + 0.3 s, so it starts; after it a third could not
    (0.6 + 2 + 0.3 s). Read timeout 1 s: already a second attempt could not (1 + 1 + 1 s)."""
    url = f'{server}/stalled.pkl'
    monkeypatch.setenv('EDM_BDIA_DOWNLOAD_PATIENCE', '2.5')
    for read_timeout, attempts in ((0.3, 2), (1.0, 1)):
        monkeypatch.setattr(download, 'READ_TIMEOUT_S', read_timeout)
        _Handler.requests = []
        started = time.monotonic()
        with pytest.raises(DownloadError, match=rf'failed {attempts} time\(s\), last: .*[Rr]ead timed out'):
            open_url(url, num_attempts=10, verbose=False)
        assert time.monotonic() - started < 2.5 and _Handler.requests == ['/stalled.pkl'] * attempts
    assert download.READ_TIMEOUT_S <= 10 and download.PATIENCE_S <= 60  # the real settings: seconds, a minute


def test_missing_file_is_not_retried(server, cache):
    with pytest.raises(DownloadError, match='HTTP 404.*check the URL'):
        open_url(f'{server}/missing.pkl', verbose=False)
    assert _Handler.requests == ['/missing.pkl']


def _closed_port():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_unreachable_host_fails_at_once_with_one_line(cache, monkeypatch, capsys):
    monkeypatch.setattr(download.time, 'sleep', lambda seconds: pytest.fail('waited to retry a dead connection'))
    url = f'http://127.0.0.1:{_closed_port()}/edm-cifar10-32x32-cond-vp.pkl'
    start = time.monotonic()
    with pytest.raises(DownloadError) as error:
        open_url(url, num_attempts=10, verbose=False)
    assert time.monotonic() - start < download.CONNECT_TIMEOUT_S
    message = str(error.value)
    assert message.startswith(f'cannot download {url}: cannot reach 127.0.0.1:') and 'Connection refused' in message
    assert message.endswith(f'; place the file at {download.cache_path(url)}') and '\n' not in message
    assert str(cache) in message and capsys.readouterr().err == ''


@pytest.mark.parametrize('value', ['1', 'true', 'YES'])
def test_offline_switch_never_touches_the_network(server, cache, monkeypatch, value):
    monkeypatch.setenv('EDM_BDIA_OFFLINE', value)
    url = f'{server}/weights.pkl'
    with pytest.raises(DownloadError, match=r'^cannot download \S+/weights.pkl: offline \(\$EDM_BDIA_OFFLINE is set\); '
                                            r'place the file at \S+'):
        open_url(url, verbose=False)
    with pytest.raises(DownloadError, match='offline.*download it yourself and pass its local path'):
        open_url(url, cache=False)
    assert _Handler.requests == []
    os.makedirs(cache)
    with open(download.cache_path(url), 'wb') as file:  # what the message asks for
        file.write(b'placed by hand')
    assert open_url(url).read() == b'placed by hand'
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '0')
    assert not download.is_offline()


def test_existing_dnnlib_cache_is_used_without_network(tmp_path, monkeypatch):
    url = 'https://nvlabs-fi-cdn.nvidia.com/edm/pretrained/edm-cifar10-32x32-cond-vp.pkl'
    downloads = tmp_path / 'dnnlib' / 'downloads'
    downloads.mkdir(parents=True)
    (downloads / f'{download.url_md5(url)}_{download.safe_name(url)}').write_bytes(b'cached')
    monkeypatch.delenv('EDM_BDIA_CACHE_DIR', raising=False)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'dnnlib'))
    monkeypatch.setenv('EDM_BDIA_OFFLINE', '1')  # a miss would be an error: the file must come from the cache
    with open_url(url) as file:
        assert file.read() == b'cached'


def test_ambiguous_cache_entries_are_downloaded_again(server, cache):
    url = f'{server}/weights.pkl'
    cache.mkdir()
    for suffix in ('a', 'b'):  # two matches for <md5>_*: dnnlib's rule says miss
        (cache / f'{download.url_md5(url)}_{suffix}').write_bytes(b'stale')
    with open_url(url, verbose=False) as file:
        assert file.read() == PAYLOAD
    assert len(_Handler.requests) == 1


def test_uncached_download_returns_the_bytes(server, cache):
    assert open_url(f'{server}/weights.pkl', cache=False, verbose=False).read() == PAYLOAD
    assert not cache.exists()
    with pytest.raises(ValueError, match='return_filename'):
        open_url(f'{server}/weights.pkl', cache=False, return_filename=True)


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv('EDM_BDIA_CACHE_DIR', raising=False)
    monkeypatch.delenv('DNNLIB_CACHE_DIR', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    assert download.cache_dir_path() == os.path.join(str(tmp_path), '.cache', 'dnnlib', 'downloads')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', '/d')
    assert download.cache_dir_path() == os.path.join('/d', 'downloads')
    monkeypatch.setenv('EDM_BDIA_CACHE_DIR', '/e')
    assert download.cache_dir_path() == '/e'
    assert download.cache_dir_path('/explicit') == '/explicit'


def test_local_paths_and_file_urls(tmp_path):
    path = tmp_path / 'local file.bin'
    path.write_bytes(b'local')
    with open_url(str(path)) as file:
        assert file.read() == b'local'
    assert open_url(path.as_uri(), return_filename=True) == str(path)
    assert download.file_url_to_path('file:///C:/data/x.pkl') == 'C:/data/x.pkl'
    with pytest.raises(FileNotFoundError, match='no such file'):
        open_url(str(tmp_path / 'absent.pkl'))
    with pytest.raises(IsADirectoryError, match='is a folder, not a file'):
        open_url(str(tmp_path))
