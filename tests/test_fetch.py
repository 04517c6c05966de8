import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from convlens.errors import ConvlensError
from convlens.fetch import RemoteFile, fetch, find_local, search_dirs


def _remote(content: bytes, name="f.gz", urls=(), subdir=""):
    return RemoteFile(name, hashlib.sha256(content).hexdigest(), tuple(urls), subdir)


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path/www`` (no network leaves this machine)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_find_local_prefers_the_first_matching_copy_and_skips_bad_ones(tmp_path, caplog):
    good, bad = tmp_path / "a", tmp_path / "b"
    (good / "sub").mkdir(parents=True)
    bad.mkdir()
    (bad / "f.gz").write_bytes(b"corrupt")
    (good / "sub" / "f.gz").write_bytes(b"payload")
    remote = _remote(b"payload", subdir="sub")
    assert find_local(remote, [bad, good]) == good / "sub" / "f.gz"
    assert "ignoring" in caplog.text and str(bad / "f.gz") in caplog.text
    assert find_local(remote, [bad]) is None


def test_fetch_downloads_into_the_cache_with_checksum(server, tmp_path, monkeypatch):
    www, url = server
    (www / "f.gz").write_bytes(b"payload")
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    got = fetch(_remote(b"payload", urls=[url + "f.gz"]), [tmp_path / "nowhere"])
    assert got == tmp_path / "cache" / "f.gz" and got.read_bytes() == b"payload"


def test_fetch_falls_back_to_the_next_url(server, tmp_path):
    www, url = server
    (www / "f.gz").write_bytes(b"payload")
    got = fetch(_remote(b"payload", urls=[url + "missing/f.gz", url + "f.gz"]), [])
    assert got.read_bytes() == b"payload"


def test_checksum_mismatch_fails_and_leaves_no_file(server, tmp_path, monkeypatch):
    www, url = server
    (www / "f.gz").write_bytes(b"tampered")
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConvlensError, match="f.gz: checksum mismatch, download deleted.*Offline\\? Put the file at"):
        fetch(_remote(b"payload", urls=[url + "f.gz"]), [])
    assert not (tmp_path / "cache" / "f.gz").exists()


def test_http_errors_are_named(server):
    _, url = server
    with pytest.raises(ConvlensError, match="missing.gz: HTTP 404"):
        fetch(_remote(b"payload", urls=[url + "missing.gz"]), [])


def test_unreachable_server_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(ConvlensError) as err:
        fetch(_remote(b"x", urls=["http://127.0.0.1:9/f.gz"], subdir="fashion-mnist"), [])
    message = str(err.value)
    assert "\n" not in message
    assert "http://127.0.0.1:9/f.gz: server unreachable" in message
    assert f"Put the file at {tmp_path / 'mirror' / 'fashion-mnist' / 'f.gz'}" in message


def test_search_dirs_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_MIRROR", "/m")
    monkeypatch.setenv("CONVLENS_CACHE", "/c")
    dirs = search_dirs(tmp_path / "project", extra=[tmp_path / "keras"])
    assert [str(d) for d in dirs] == ["/m", str(tmp_path / "shared" / "mirror"), str(tmp_path / "keras"), "/c"]
