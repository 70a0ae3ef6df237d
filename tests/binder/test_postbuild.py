"""binder/postBuild: download the pinned Consul zip, check its SHA-256, install it on PATH.

A local HTTP server plays HashiCorp's releases host (CONSUL_RELEASES_URL), serving a
fabricated release zip whose ``consul`` is a small shell script.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from binder_support import REPO

POSTBUILD = REPO / "binder" / "postBuild"
VERSION = "1.20.5"
ARCHIVE = f"consul_{VERSION}_linux_amd64.zip"
FAKE_CONSUL = f'#!/bin/sh\necho "Consul v{VERSION} (fake, for tests)"\n'

needs_amd64 = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64",
    reason="postBuild installs the linux amd64 archive only on Linux x86_64",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def releases(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve ``tmp_path/releases`` over HTTP on loopback; yield (base URL, that directory)."""
    root = tmp_path / "releases"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def publish(root: Path, members: dict[str, str], version: str = VERSION) -> bytes:
    """Write a release zip with ``members`` (name -> text, mode 755) under ``root``; return it."""
    path = root / version / f"consul_{version}_linux_amd64.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16
            archive.writestr(info, text)
    return path.read_bytes()


def pin_file(tmp_path: Path, digest: str, archive: str = ARCHIVE) -> Path:
    path = tmp_path / "consul.sha256"
    path.write_text(f"# test pin\n{digest}  {archive}\n")
    return path


def run_postbuild(base_url: str, sha_file: Path, install_dir: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CONSUL_RELEASES_URL": base_url,
        "CONSUL_SHA256_FILE": str(sha_file),
        "CONSUL_INSTALL_DIR": str(install_dir),
        "PYTHON": sys.executable,
    }
    return subprocess.run(
        [str(POSTBUILD)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@needs_amd64
def test_good_checksum_installs_a_runnable_consul(tmp_path: Path, releases) -> None:
    base, root = releases
    data = publish(root, {"consul": FAKE_CONSUL, "LICENSE.txt": "license"})
    install_dir = tmp_path / "bin"

    result = run_postbuild(base, pin_file(tmp_path, hashlib.sha256(data).hexdigest()), install_dir)

    assert result.returncode == 0, result.stderr
    assert f"installed Consul {VERSION}" in result.stdout
    assert sorted(p.name for p in install_dir.iterdir()) == ["consul"]
    version = subprocess.run(
        [str(install_dir / "consul"), "version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith(f"Consul v{VERSION}")


@needs_amd64
def test_bad_checksum_is_refused_and_nothing_installed(tmp_path: Path, releases) -> None:
    base, root = releases
    publish(root, {"consul": FAKE_CONSUL})
    install_dir = tmp_path / "bin"
    wrong = hashlib.sha256(b"some other archive").hexdigest()

    result = run_postbuild(base, pin_file(tmp_path, wrong), install_dir)

    assert result.returncode == 0, result.stderr
    assert "checksum mismatch" in result.stdout
    assert "NOT installed" in result.stdout
    assert "embedded agent" in result.stdout
    assert not install_dir.exists() or not any(install_dir.iterdir())


@needs_amd64
def test_download_failure_installs_nothing_and_succeeds(tmp_path: Path, releases) -> None:
    base, _root = releases  # nothing published: the server answers 404
    install_dir = tmp_path / "bin"

    result = run_postbuild(base, pin_file(tmp_path, "0" * 64), install_dir)

    assert result.returncode == 0, result.stderr
    assert "could not download" in result.stdout
    assert "404" in result.stdout
    assert not install_dir.exists()


@needs_amd64
@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"LICENSE.txt": "no binary here"}, "no 'consul' executable"),
        ({"consul": "#!/bin/sh\nexit 3\n"}, "'consul version' failed"),
    ],
    ids=["no-binary-in-zip", "binary-does-not-run"],
)
def test_unusable_archive_installs_nothing(
    tmp_path: Path, releases, members: dict[str, str], reason: str
) -> None:
    base, root = releases
    data = publish(root, members)
    install_dir = tmp_path / "bin"

    result = run_postbuild(base, pin_file(tmp_path, hashlib.sha256(data).hexdigest()), install_dir)

    assert result.returncode == 0, result.stderr
    assert reason in result.stdout
    assert not install_dir.exists() or not any(install_dir.iterdir())


def test_malformed_pin_file_fails_the_build(tmp_path: Path, releases) -> None:
    base, _root = releases
    install_dir = tmp_path / "bin"

    result = run_postbuild(base, pin_file(tmp_path, "not-a-digest"), install_dir)

    assert result.returncode != 0
    assert "must hold exactly one line" in result.stderr
    assert not install_dir.exists()


def test_repository_pins_one_linux_amd64_release() -> None:
    lines = [
        line
        for line in (REPO / "binder" / "consul.sha256").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) == 1
    assert re.fullmatch(r"[0-9a-f]{64}  consul_\d+\.\d+\.\d+_linux_amd64\.zip", lines[0])
