"""Download public recommendation datasets into a local cache, safely.

Files are written to ``<name>.part`` and renamed into place only after they are complete and
their SHA-256 matches (where known), so an interrupted download never looks finished; a second
call resumes a ``.part`` file with an HTTP ``Range`` request when the server allows it.

>>> paths = download_dataset("movielens-100k")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it lives and, when known, its SHA-256."""

    url: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_AMAZON2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
_AMAZON2018 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2"
_MOVIELENS = "https://files.grouplens.org/datasets/movielens"
AMAZON2014_CATEGORIES = (
    "Amazon_Instant_Video Apps_for_Android Automotive Baby Beauty Books CDs_and_Vinyl "
    "Cell_Phones_and_Accessories "
    "Clothing_Shoes_and_Jewelry Digital_Music Electronics Grocery_and_Gourmet_Food Health_and_Personal_Care "
    "Home_and_Kitchen Kindle_Store Movies_and_TV Musical_Instruments Office_Products Patio_Lawn_and_Garden "
    "Pet_Supplies Sports_and_Outdoors Tools_and_Home_Improvement Toys_and_Games Video_Games"
).split()
AMAZON2018_CATEGORIES = (
    "AMAZON_FASHION All_Beauty Appliances Arts_Crafts_and_Sewing Automotive Books CDs_and_Vinyl "
    "Cell_Phones_and_Accessories Clothing_Shoes_and_Jewelry Digital_Music Electronics Gift_Cards "
    "Grocery_and_Gourmet_Food Home_and_Kitchen Industrial_and_Scientific Kindle_Store Luxury_Beauty "
    "Magazine_Subscriptions Movies_and_TV Musical_Instruments Office_Products Patio_Lawn_and_Garden "
    "Pet_Supplies "
    "Prime_Pantry Software Sports_and_Outdoors Tools_and_Home_Improvement Toys_and_Games Video_Games"
).split()
# SHA-256 of published files we have checked; the others are downloaded unverified.
_KNOWN_SHA256 = MappingProxyType(
    {
        "reviews_Musical_Instruments_5.json.gz": ("03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748"),
        "Gift_Cards_5.json.gz": "41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25",
        "meta_Gift_Cards.json.gz": "07fd154b7275ab9b1537e3802913508c7a5f84ed00f73201cd3fa18b2b51b342",
    }
)


def _remote(url: str) -> RemoteFile:
    return RemoteFile(url, _KNOWN_SHA256.get(url.rsplit("/", 1)[-1]))


KNOWN_DATASETS: Mapping[str, tuple[RemoteFile, ...]] = MappingProxyType(
    {
        **{
            f"amazon2014/{c}": (
                _remote(f"{_AMAZON2014}/reviews_{c}_5.json.gz"),
                _remote(f"{_AMAZON2014}/meta_{c}.json.gz"),
            )
            for c in AMAZON2014_CATEGORIES
        },
        **{
            f"amazon2018/{c}": (
                _remote(f"{_AMAZON2018}/categoryFilesSmall/{c}_5.json.gz"),
                _remote(f"{_AMAZON2018}/metaFiles2/meta_{c}.json.gz"),
            )
            for c in AMAZON2018_CATEGORIES
        },
        **{f"movielens-{v}": (_remote(f"{_MOVIELENS}/ml-{v}.zip"),) for v in ("100k", "1m", "20m", "25m", "32m")},
    }
)


def default_cache_dir() -> Path:
    """``$P5REC_CACHE`` if set, else ``~/.cache/p5rec``."""
    return Path(os.environ.get("P5REC_CACHE") or Path.home() / ".cache" / "p5rec")


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download `url` to `dest` atomically, resuming a previous partial download, and verify it.

    Args:
        url: the http(s) URL.
        dest: the final file path; if it already exists (and matches `sha256`), nothing is fetched.
        sha256: the expected hex digest; None skips verification.
        timeout: seconds to wait for the server.
        chunk_size: bytes read at a time.

    Raises:
        ValueError: the downloaded bytes do not match `sha256` (the partial file is deleted).
        OSError: the server could not be reached or answered with an error.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            # 206: the server resumes from `have`; 200: it ignored Range, so start over.
            mode = "ab" if have and response.status == 206 else "wb"
            with open(part, mode) as f:
                shutil.copyfileobj(response, f, chunk_size)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:  # 416: nothing left past `have`: the .part file is complete
            raise OSError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise OSError(f"downloading {url} failed: {e.reason} (the .part file is kept; run again to resume)") from e
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256:
            part.unlink()
            raise ValueError(
                f"{url}: SHA-256 {got} does not match the expected `sha256` {sha256}; the download was removed"
            )
    os.replace(part, dest)
    return dest


def extract_zip(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract `archive` into `dest` (atomically, via a temp folder), refusing members that escape it."""
    dest = Path(dest)
    if dest.is_dir():
        return dest
    tmp = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            target = (tmp / member).resolve()
            if not target.is_relative_to(tmp.resolve()):
                raise ValueError(f"{archive}: member {member!r} would be written outside {dest}; refusing to extract")
        zf.extractall(tmp)
    entries = list(tmp.iterdir())
    # Archives such as ml-1m.zip hold a single top folder: make that folder `dest`.
    os.replace(entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp, dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download_dataset(
    name: str, cache_dir: str | os.PathLike | None = None, *, mirror: str | None = None, verify: bool = True
) -> list[Path]:
    """Download a known dataset's files into ``<cache_dir>/<name>/``; zip archives are extracted.

    Args:
        name: a key of :data:`KNOWN_DATASETS` ("movielens-1m", "amazon2014/Beauty", ...).
        cache_dir: the cache root (default :func:`default_cache_dir`).
        mirror: a base URL that replaces each file's directory URL (for mirrors and offline tests).
        verify: check SHA-256 digests where they are known.

    Returns:
        The downloaded files (for a zip: the extracted folder), in registry order.
    """
    if name not in KNOWN_DATASETS:
        close = sorted(k for k in KNOWN_DATASETS if name.lower().split("/")[-1] in k.lower())[:5]
        hint = f"; did you mean {close}?" if close else "; run `p5rec data download --list`"
        raise KeyError(f"`name` ({name!r}) is not a known dataset{hint}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = []
    for remote in KNOWN_DATASETS[name]:
        url = f"{mirror.rstrip('/')}/{remote.filename}" if mirror else remote.url
        path = download_file(url, root / name / remote.filename, sha256=remote.sha256 if verify else None)
        if path.suffix == ".zip":
            path = extract_zip(path, path.with_suffix(""))
        out.append(path)
    return out
