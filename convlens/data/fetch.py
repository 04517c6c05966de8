"""Find a file locally or download it; the checksum decides either way. No TensorFlow here."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from convlens.errors import ConvlensError
from convlens.pipeline.config import origin_root

log = logging.getLogger(__name__)

MIRROR_ENV = "CONVLENS_MIRROR"
CACHE_ENV = "CONVLENS_CACHE"
ATTEMPTS = 2  # per URL, when the server answered but the transfer failed (HTTP 5xx, connection cut mid-file)
RETRY_DELAY_S = 2.0
KERAS_HOME_ENV = "KERAS_HOME"
# The names Keras saves a download under in its datasets folder when they are not the file's own: the CIFAR archives
# (keras.datasets.cifar10/cifar100 call get_file(extract=True); Keras 3.15 keeps the archive as
# "<dir>-target_archive" beside the extracted "<dir>-target/", tf.keras 2 as "<dir>.tar.gz"). The bytes are the
# archive's own, so the checksum decides as for any copy.
KERAS_NAMES = {
    "cifar-10-python.tar.gz": ("cifar-10-batches-py-target_archive", "cifar-10-batches-py.tar.gz"),
    "cifar-100-python.tar.gz": ("cifar-100-python-target_archive", "cifar-100-python.tar.gz"),
}
# The only data folder Keras's loaders make in its datasets folder (keras.datasets.fashion_mnist); mnist.npz and the
# CIFAR archives lie in the datasets folder itself, under the names above.
KERAS_SUBDIRS = frozenset({"fashion-mnist"})


@dataclass(frozen=True)
class RemoteFile:
    """A file known by name and sha256, downloadable from any of ``urls``."""

    name: str
    sha256: str
    urls: tuple[str, ...]
    subdir: str = ""


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where downloads land: ``$CONVLENS_CACHE`` or ``~/.cache/convlens``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "convlens")


def search_dirs(root: Path, extra: Sequence[Path] = ()) -> list[Path]:
    """Local places to look, in order: ``$CONVLENS_MIRROR``, ``../shared/mirror``, ``extra``, the cache.

    ``../shared/mirror`` is beside the repository, also when ``root`` is a queued experiment's workspace.
    """
    dirs = [Path(os.environ[MIRROR_ENV])] if os.environ.get(MIRROR_ENV) else []
    dirs += [origin_root(root).parent / "shared" / "mirror", *extra, cache_dir()]
    return dirs


def keras_datasets() -> list[Path]:
    """Where Keras keeps its downloads: ``$KERAS_HOME/datasets`` when set, and ``~/.keras/datasets``."""
    home = os.environ.get(KERAS_HOME_ENV)
    return list(dict.fromkeys([*([Path(home) / "datasets"] if home else []), Path.home() / ".keras" / "datasets"]))


def find_local(file: RemoteFile, dirs: Sequence[Path]) -> Path | None:
    """The first local copy whose checksum matches; copies that don't match are skipped with a warning."""
    for d in dirs:
        names = [d / file.subdir / file.name, d / file.name, *(d / name for name in KERAS_NAMES.get(file.name, ()))]
        for candidate in dict.fromkeys(names):
            if not candidate.is_file():
                continue
            if sha256sum(candidate) == file.sha256:
                return candidate
            log.warning("ignoring %s: its sha256 is not the expected %s…", candidate, file.sha256[:12])
    return None


def _reason(error: Exception) -> str:
    """A download failure in a few words."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection cut mid-file, truncated download deleted"
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return "server unreachable"
    if isinstance(error, ValueError) and "hash" in str(error).lower():
        return "checksum mismatch, download deleted"
    return str(error).splitlines()[0][:120]


def _transient(error: Exception) -> bool:
    """A failure worth one more try at the same URL: a server error or a transfer cut short."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code >= 500
    return isinstance(error, requests.exceptions.ChunkedEncodingError)


class DownloadFailed(ConvlensError):
    """``file`` is not found locally and no URL served it; ``reasons`` says what each URL answered."""

    def __init__(self, file: RemoteFile, reasons: str, message: str = ""):
        super().__init__(message or f"cannot download {file.name} ({reasons})")
        self.file, self.reasons = file, reasons


def download(file: RemoteFile, dest: Path) -> Path:
    """Download from the first URL that serves the right bytes; a bad download never stays on disk.

    Each URL gets ``ATTEMPTS`` tries when the failure is transient (HTTP 5xx, a cut connection);
    a 4xx, an unreachable server or a checksum mismatch moves on to the next URL at once.
    """
    import pooch
    import requests

    existed = dest.exists()
    try:
        return _download(file, dest, pooch, requests)
    finally:
        if not existed and dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # pooch made the cache folder; a failed download leaves no empty one behind


def _download(file: RemoteFile, dest: Path, pooch, requests) -> Path:
    errors = []
    for url in file.urls:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                got = pooch.retrieve(
                    url, known_hash=f"sha256:{file.sha256}", fname=file.name, path=dest, progressbar=True
                )
                return Path(got)
            except (requests.RequestException, ValueError, OSError) as e:
                if attempt < ATTEMPTS and _transient(e):
                    log.warning("%s: %s; retrying in %g s", url, _reason(e), RETRY_DELAY_S)
                    time.sleep(RETRY_DELAY_S)
                    continue
                errors.append(f"{url}: {_reason(e)}" + (f" ({attempt} tries)" if attempt > 1 else ""))
                break
    raise DownloadFailed(file, "; ".join(errors))


def _get(file: RemoteFile, dirs: Sequence[Path]) -> Path:
    found = find_local(file, dirs)
    if found is not None:
        log.info("%s: using %s (sha256 ok)", file.name, found)
        return found
    if not file.urls:
        where = ", ".join(map(str, dirs))
        raise DownloadFailed(file, "no URL configured", f"{file.name} not found in {where} and no URL is configured")
    return download(file, cache_dir())


Missing = tuple[DownloadFailed, Sequence[Path]]


def _keras_place(d: Path, subdir: str, names: Sequence[str]) -> str:
    """The files ``names`` as Keras's own download keeps them in its datasets folder ``d``."""
    if not subdir or subdir in KERAS_SUBDIRS:
        return str(d / subdir)
    return ", ".join(str(d / KERAS_NAMES.get(name, (name,))[0]) for name in names)


def _places(subdir: str, dirs: Sequence[Path], names: Sequence[str]) -> list[str]:
    """Where files ``names`` of ``subdir`` may go, in search order; ``$CONVLENS_MIRROR`` named even when unset;
    in Keras's datasets folder, the files as Keras's own download keeps them (``mnist.npz`` in no subfolder)."""
    mirror = os.environ.get(MIRROR_ENV)
    unset = [] if mirror else [f"${MIRROR_ENV}/{subdir}".rstrip("/") + f" (set {MIRROR_ENV}=<dir>)"]
    keras = set(keras_datasets())
    return unset + [_keras_place(d, subdir, names) if d in keras else str(d / subdir) for d in dict.fromkeys(dirs)]


def offline_message(missing: Sequence[Missing]) -> str:
    """One line for every file that could not be had: why, its sha256, and each place it may go."""
    if len(missing) == 1:
        e, dirs = missing[0]
        where = Path(os.environ.get(MIRROR_ENV) or "<dir>") / e.file.subdir / e.file.name
        others = _places(e.file.subdir, dirs, [e.file.name])[1:]  # after $CONVLENS_MIRROR, which `where` names
        return (
            f"{e}. Offline? Put the file at {where} and set {MIRROR_ENV}=<dir> (checksum sha256 {e.file.sha256}), "
            f"or in any of {', '.join(others)}"
        )
    files = "; ".join(f"{e.file.name} (sha256 {e.file.sha256}: {e.reasons})" for e, _ in missing)
    groups: dict[tuple[str, tuple[Path, ...]], list[str]] = {}
    for e, dirs in missing:
        groups.setdefault((e.file.subdir, tuple(dirs)), []).append(e.file.name)
    places = "; ".join(
        f"{', '.join(names)} in any of {', '.join(_places(subdir, dirs, names))}"
        for (subdir, dirs), names in groups.items()
    )
    return f"{len(missing)} files are missing (no local copy, no download): {files}. Offline? Put {places}"


def try_all(wanted: Sequence[tuple[RemoteFile, Sequence[Path]]]) -> tuple[list[Path | None], list[Missing]]:
    """Each file found in its dirs or downloaded into the cache (None where it could not be had), every one
    tried; and the failures, for :func:`offline_message`."""
    found: list[Path | None] = []
    missing: list[Missing] = []
    for file, dirs in wanted:
        try:
            found.append(_get(file, dirs))
        except DownloadFailed as e:
            found.append(None)
            missing.append((e, dirs))
    return found, missing


def fetch_all(wanted: Sequence[tuple[RemoteFile, Sequence[Path]]]) -> list[Path]:
    """A verified local path for each file; when any cannot be had, one error lists them all."""
    found, missing = try_all(wanted)
    if missing:
        raise ConvlensError(offline_message(missing))
    return [path for path in found if path is not None]


def fetch(file: RemoteFile, dirs: Sequence[Path]) -> Path:
    """A verified local path to ``file``: found in ``dirs`` or downloaded into the cache."""
    return fetch_all([(file, dirs)])[0]
