"""Downloads against a local HTTP server on 127.0.0.1: caching, resume, checksums, zip extraction."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from p5rec.data.download import KNOWN_DATASETS, download_dataset, download_file, extract_zip

PAYLOAD = bytes(range(256)) * 40  # 10 KiB


def make_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "196\t242\t3\t881250949\n")
        zf.writestr("ml-100k/README", "MovieLens")
    return buf.getvalue()


@pytest.fixture
def server():
    """Serves FILES; honours `Range` unless `state["ranges"]` is False; logs the requests."""
    state = {"files": {"/data.bin": PAYLOAD, "/ml-100k.zip": make_zip()}, "ranges": True, "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            state["requests"].append((self.path, self.headers.get("Range")))
            body = state["files"].get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if self.headers.get("Range") and state["ranges"]:
                start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_and_caches(server, tmp_path):
    dest = tmp_path / "cache" / "data.bin"
    assert download_file(f"{server['url']}/data.bin", dest, sha256=SHA).read_bytes() == PAYLOAD
    assert not dest.with_name("data.bin.part").exists()
    download_file(f"{server['url']}/data.bin", dest, sha256=SHA)
    assert len(server["requests"]) == 1  # the second call used the cache


def test_resume_appends_to_the_partial_file(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(PAYLOAD[:3000])
    download_file(f"{server['url']}/data.bin", dest, sha256=SHA)
    assert server["requests"] == [("/data.bin", "bytes=3000-")]
    assert dest.read_bytes() == PAYLOAD


def test_a_server_without_range_support_restarts_the_download(server, tmp_path):
    server["ranges"] = False
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(b"garbage")
    download_file(f"{server['url']}/data.bin", dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


def test_a_complete_partial_file_is_finished_without_refetching(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(PAYLOAD)
    download_file(f"{server['url']}/data.bin", dest, sha256=SHA)  # the server answers 416
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_download(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(ValueError, match=r"SHA-256 [0-9a-f]{64} does not match the expected `sha256` 0000"):
        download_file(f"{server['url']}/data.bin", dest, sha256="0000")
    assert list(tmp_path.iterdir()) == []


def test_a_cached_file_with_a_wrong_checksum_is_fetched_again(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"stale")
    download_file(f"{server['url']}/data.bin", dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


def test_http_errors_are_os_errors_naming_the_url(server, tmp_path):
    with pytest.raises(OSError, match=r"downloading .*/missing.bin failed: HTTP 404"):
        download_file(f"{server['url']}/missing.bin", tmp_path / "m.bin")


def test_download_dataset_from_a_mirror_extracts_zips(server, tmp_path):
    (folder,) = download_dataset("movielens-100k", tmp_path, mirror=server["url"])
    assert folder == tmp_path / "movielens-100k" / "ml-100k"
    assert (folder / "u.data").read_text().startswith("196\t242")


def test_unknown_dataset_names_suggest_close_ones(tmp_path):
    with pytest.raises(
        KeyError, match=r"`name` \('Beauty'\) is not a known dataset; did you mean \['amazon2014/Beauty'"
    ):
        download_dataset("Beauty", tmp_path)
    assert "amazon2018/Gift_Cards" in KNOWN_DATASETS and "movielens-1m" in KNOWN_DATASETS


def test_zip_members_outside_the_target_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(ValueError, match=r"member '../escape.txt' would be written outside"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
