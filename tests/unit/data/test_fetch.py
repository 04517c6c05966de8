"""Downloads and local copies (``convlens.data.fetch``) against a loopback server with scripted answers, and the
``fetch_data`` stage offline: each failure is one line that names the URL, its reason and where to put the file."""

import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from convlens.data import fetch as fetch_lib
from convlens.data.fetch import DownloadFailed, RemoteFile, fetch, find_local, search_dirs
from convlens.errors import ConvlensError
from convlens.pipeline import paths
from stages import fetch_data
from tests.support.helpers import cli, error_line, hidden, one_line, snapshot


def _remote(content: bytes, name="f.gz", urls=(), subdir=""):
    return RemoteFile(name, hashlib.sha256(content).hexdigest(), tuple(urls), subdir)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``routes[path]`` = a list of (status, headers, body) answers, one per request, the last repeated."""

    routes: ClassVar[dict[str, list[tuple[int, dict, bytes]]]] = {}
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        answers = self.routes.get(self.path, [(404, {}, b"not found")])
        n = self.hits.get(self.path, 0)
        self.hits[self.path] = n + 1
        status, headers, body = answers[min(n, len(answers) - 1)]
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


@pytest.fixture
def web(monkeypatch):
    """A loopback HTTP server with scripted answers (no network leaves this machine)."""
    handler = type("Handler", (_Handler,), {"routes": {}, "hits": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(fetch_lib, "RETRY_DELAY_S", 0.0)
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


PAYLOAD = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x08\x09")


HTML = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>"


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


def test_fetch_downloads_into_the_cache_with_checksum(web, tmp_path, monkeypatch):
    handler, url = web
    handler.routes["/f.gz"] = [(200, {}, PAYLOAD)]
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    got = fetch(_remote(PAYLOAD, urls=[url + "/f.gz"]), [tmp_path / "nowhere"])
    assert got == tmp_path / "cache" / "f.gz" and got.read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    "first",
    [[(404, {}, b"gone")], [(200, {"Content-Type": "text/html"}, HTML)]],
    ids=["http-404", "html-page"],
)
def test_a_failed_first_url_falls_back_to_the_next(web, tmp_path, monkeypatch, first):
    handler, url = web
    handler.routes["/a/f.gz"] = first
    handler.routes["/b/f.gz"] = [(200, {}, PAYLOAD)]
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    got = fetch(_remote(PAYLOAD, urls=[url + "/a/f.gz", url + "/b/f.gz"]), [])
    assert got.read_bytes() == PAYLOAD and [p.name for p in (tmp_path / "cache").iterdir()] == ["f.gz"]
    assert handler.hits == {"/a/f.gz": 1, "/b/f.gz": 1}


@pytest.mark.parametrize(
    ("answers", "reason", "tries"),
    [
        ([(404, {}, b"gone")], "HTTP 404", 1),
        ([(503, {}, HTML)], "HTTP 503 (2 tries)", 2),
        ([(200, {"Content-Length": str(len(PAYLOAD) * 10)}, PAYLOAD)], "connection cut mid-file", 2),
        ([(200, {"Content-Type": "text/html"}, HTML)], "checksum mismatch, download deleted", 1),
        ([(200, {}, PAYLOAD[:-5])], "checksum mismatch, download deleted", 1),
    ],
    ids=["http-404", "http-503-retried", "truncated-connection", "html-page", "truncated-file"],
)
def test_failed_downloads_are_named_and_leave_nothing_on_disk(web, tmp_path, monkeypatch, answers, reason, tries):
    handler, url = web
    handler.routes["/f.gz"] = answers
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConvlensError) as err:
        fetch(_remote(PAYLOAD, urls=[url + "/f.gz"]), [tmp_path / "nowhere"])
    message = one_line(err)
    assert f"cannot download f.gz ({url}/f.gz: {reason}" in message and "). Offline? Put the file at " in message
    assert handler.hits["/f.gz"] == tries
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("status", [500, 503])
def test_a_transient_server_error_is_retried_once(web, tmp_path, status, caplog):
    handler, url = web
    handler.routes["/f.gz"] = [(status, {}, HTML), (200, {}, PAYLOAD)]
    assert fetch(_remote(PAYLOAD, urls=[url + "/f.gz"]), []).read_bytes() == PAYLOAD
    assert handler.hits["/f.gz"] == 2
    assert f"{url}/f.gz: HTTP {status}; retrying in 0 s" in caplog.messages


def test_a_download_shows_progress_and_every_failed_url_is_named(web, tmp_path, monkeypatch, capfd):
    handler, url = web
    handler.routes["/f.gz"] = [(200, {}, PAYLOAD)]
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    fetch(_remote(PAYLOAD, urls=[url + "/f.gz"]), [])
    assert "100%" in capfd.readouterr().err  # pooch's progress bar (tqdm), on stderr
    with pytest.raises(ConvlensError) as err:
        fetch(_remote(b"other", urls=[url + "/a", url + "/b"]), [])
    assert f"cannot download f.gz ({url}/a: HTTP 404; {url}/b: HTTP 404)" in one_line(err)


def test_a_failed_download_leaves_a_cache_folder_that_was_there(web, tmp_path, monkeypatch):
    _, url = web
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    with pytest.raises(ConvlensError):
        fetch(_remote(PAYLOAD, urls=[url + "/f.gz"]), [])
    assert (tmp_path / "cache").is_dir()  # only a folder the download made is removed (see the test above)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("SHA256 hash of downloaded file (x) does not match"), "checksum mismatch, download deleted"),
        (ValueError("bad URL\nsecond line"), "bad URL"),
        (OSError("cannot write: no hash of it\n"), "cannot write: no hash of it"),
        (OSError("x" * 200), "x" * 120),
    ],
)  # fmt: skip
def test_any_other_failure_is_its_first_line_at_most_120_characters(error, reason):
    assert fetch_lib._reason(error) == reason


def test_the_offline_message_names_each_place_a_file_may_go(monkeypatch):
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    a, b = RemoteFile("a.gz", "1" * 64, ("u",), "fashion-mnist"), RemoteFile("b.keras", "2" * 64, ("u",))
    one = fetch_lib.offline_message([(DownloadFailed(a, "u: HTTP 404"), [Path("/x"), Path("/y")])])
    assert one == (
        f"cannot download a.gz (u: HTTP 404). Offline? Put the file at <dir>/fashion-mnist/a.gz and set "
        f"CONVLENS_MIRROR=<dir> (checksum sha256 {'1' * 64}), or in any of /x/fashion-mnist, /y/fashion-mnist"
    )
    two = fetch_lib.offline_message(
        [(DownloadFailed(a, "u: HTTP 404"), [Path("/x")]), (DownloadFailed(b, "no URL"), [Path("/x")])]
    )
    assert two == (
        f"2 files are missing (no local copy, no download): a.gz (sha256 {'1' * 64}: u: HTTP 404); "
        f"b.keras (sha256 {'2' * 64}: no URL). Offline? Put a.gz in any of $CONVLENS_MIRROR/fashion-mnist "
        "(set CONVLENS_MIRROR=<dir>), /x/fashion-mnist; "
        "b.keras in any of $CONVLENS_MIRROR (set CONVLENS_MIRROR=<dir>), /x"
    )


def test_unreachable_server_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(ConvlensError) as err:
        fetch(_remote(b"x", urls=["http://127.0.0.1:9/f.gz"], subdir="fashion-mnist"), [])
    message = one_line(err)
    assert "http://127.0.0.1:9/f.gz: server unreachable" in message
    assert f"Put the file at {tmp_path / 'mirror' / 'fashion-mnist' / 'f.gz'}" in message


def test_offline_fetch_data_says_where_to_put_the_file_and_keeps_old_data(project, stage_config, tiny_assets):
    fetch_data.run(stage_config("fetch_data"), project)
    before = snapshot(project / "outputs")
    args = ["data.urls=[http://127.0.0.1:9/]"]
    done = cli(project, "fetch_data", *args, "data.files.train_labels.sha256=" + "a" * 64)
    line = error_line(done, "fetch_data")
    assert line.startswith(
        "fetch_data: error: cannot download train-labels-idx1-ubyte.gz "
        "(http://127.0.0.1:9/train-labels-idx1-ubyte.gz: server unreachable). Offline? Put the file at "
        f"{tiny_assets['mirror'] / 'fashion-mnist' / 'train-labels-idx1-ubyte.gz'} and set CONVLENS_MIRROR=<dir>"
    )
    after = snapshot(project / "outputs")
    # the overrides were composed into params.yaml before the stage ran, and so was the record of conf/ beside it
    assert after.pop(paths.composed_conf_path(project).name) and after == before
    assert not hidden(project / "outputs")


def test_search_dirs_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_MIRROR", "/m")
    monkeypatch.setenv("CONVLENS_CACHE", "/c")
    dirs = search_dirs(tmp_path / "project", extra=[tmp_path / "keras"])
    assert [str(d) for d in dirs] == ["/m", str(tmp_path / "shared" / "mirror"), str(tmp_path / "keras"), "/c"]


def test_files_without_urls_are_each_listed_with_their_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    a, b = RemoteFile("a.gz", "1" * 64, (), "data"), RemoteFile("b.gz", "2" * 64, ())
    with pytest.raises(ConvlensError) as err:
        fetch_lib.fetch_all([(a, [tmp_path]), (b, [tmp_path])])
    assert str(err.value).startswith(
        f"2 files are missing (no local copy, no download): a.gz (sha256 {'1' * 64}: no URL configured); "
        f"b.gz (sha256 {'2' * 64}: no URL configured). Offline? "
    )
    with pytest.raises(ConvlensError) as err:
        fetch_lib.fetch(a, [tmp_path])
    assert str(err.value).startswith(f"a.gz not found in {tmp_path} and no URL is configured. Offline? ")


def test_the_offline_message_names_keras_own_cache_files(monkeypatch, tmp_path):
    """Keras keeps mnist.npz and the CIFAR archive in its datasets folder itself (no subfolder, its own archive name),
    as find_local accepts them; only fashion-mnist has a folder there."""
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    keras = tmp_path / ".keras" / "datasets"
    dirs = [Path("/x"), keras]
    mnist = RemoteFile("mnist.npz", "1" * 64, ("u",), "mnist")
    cifar = RemoteFile("cifar-10-python.tar.gz", "2" * 64, ("u",), "cifar-10")
    fashion = RemoteFile("a.gz", "3" * 64, ("u",), "fashion-mnist")
    assert fetch_lib.offline_message([(DownloadFailed(mnist, "u: HTTP 404"), dirs)]).endswith(
        f"or in any of /x/mnist, {keras}/mnist.npz"
    )
    assert fetch_lib.offline_message([(DownloadFailed(cifar, "u: HTTP 404"), dirs)]).endswith(
        f"or in any of /x/cifar-10, {keras}/cifar-10-batches-py-target_archive"
    )
    two = fetch_lib.offline_message([(DownloadFailed(mnist, "u"), dirs), (DownloadFailed(fashion, "u"), dirs)])
    assert two.endswith(
        f"mnist.npz in any of $CONVLENS_MIRROR/mnist (set CONVLENS_MIRROR=<dir>), /x/mnist, {keras}/mnist.npz; "
        f"a.gz in any of $CONVLENS_MIRROR/fashion-mnist (set CONVLENS_MIRROR=<dir>), /x/fashion-mnist, "
        f"{keras}/fashion-mnist"
    )
    keras.mkdir(parents=True)
    (keras / "mnist.npz").write_bytes(b"m")
    named = RemoteFile("mnist.npz", fetch_lib.sha256sum(keras / "mnist.npz"), ("u",), "mnist")
    assert fetch_lib.find_local(named, dirs) == keras / "mnist.npz"  # the place named is one find_local accepts
