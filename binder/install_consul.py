"""Install the pinned Consul release binary, verified by SHA-256, for Binder's postBuild.

Reads the pinned archive name and digest from ``binder/consul.sha256``, downloads
``<base>/<version>/<archive>``, checks the digest, and puts the ``consul`` executable into the
install directory. Any download, checksum or archive problem installs nothing, prints why,
and exits 0: the tutorial then falls back to the embedded agent (``elect_helpers.devagent``).

Environment overrides (the tests use them with a local HTTP server):
  CONSUL_RELEASES_URL  base URL of the releases (default: HashiCorp's releases host)
  CONSUL_SHA256_FILE   checksum file (default: consul.sha256 beside this script)
  CONSUL_INSTALL_DIR   where ``consul`` goes (default: $CONDA_DIR/bin, else ~/.local/bin)
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import NamedTuple

DEFAULT_RELEASES_URL = "https://releases.hashicorp.com/consul"
DOWNLOAD_TIMEOUT_S = 120
FALLBACK = "the tutorial will use the embedded agent (elect_helpers.devagent) instead"
_LINE = re.compile(
    r"^(?P<digest>[0-9a-f]{64}) [ *](?P<name>consul_(?P<version>[^_]+)_linux_amd64\.zip)$"
)


class Pin(NamedTuple):
    """The pinned release: archive file name, its version and its SHA-256 (hex)."""

    archive: str
    version: str
    sha256: str


class InstallSkipped(Exception):
    """A problem outside the repository (network, archive contents): install nothing."""


def read_pin(path: Path) -> Pin:
    """Return the one pin in a ``sha256sum``-style file; '#' lines are comments.

    Raises ValueError when the file does not hold exactly one well-formed line: that is a bug
    in the repository, and the build should fail on it.
    """
    lines = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    matches = [_LINE.match(line) for line in lines]
    if len(matches) != 1 or matches[0] is None:
        raise ValueError(
            f"{path} must hold exactly one line '<sha256>  consul_<version>_linux_amd64.zip'"
        )
    found = matches[0]
    return Pin(found["name"], found["version"], found["digest"])


def download(url: str) -> bytes:
    """Return the body at ``url``; raise InstallSkipped on any network or HTTP error."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise InstallSkipped(f"could not download {url}: {error}") from error


def verify(data: bytes, pin: Pin) -> None:
    """Raise InstallSkipped unless ``data`` has the pinned SHA-256."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != pin.sha256:
        raise InstallSkipped(
            f"checksum mismatch for {pin.archive}: expected {pin.sha256}, got {actual}; "
            "refusing to install it"
        )


def extract_consul(data: bytes) -> bytes:
    """Return the ``consul`` executable from a release zip; raise InstallSkipped if absent."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read("consul")
    except (zipfile.BadZipFile, KeyError) as error:
        raise InstallSkipped(f"the archive has no 'consul' executable: {error}") from error


def install(binary: bytes, install_dir: Path) -> Path:
    """Write ``binary`` as ``install_dir/consul`` (mode 755) atomically; return its path.

    If the installed file does not run ``consul version``, it is removed and InstallSkipped
    raised, so a broken binary is never left on PATH.
    """
    target = install_dir / "consul"
    staged: Path | None = None
    try:
        install_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=install_dir, prefix=".consul-", delete=False) as tmp:
            staged = Path(tmp.name)
            tmp.write(binary)
    except OSError as error:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise InstallSkipped(f"cannot write to {install_dir}: {error}") from error
    try:
        staged.chmod(0o755)
        check = subprocess.run(
            [str(staged), "version"], capture_output=True, text=True, timeout=30, check=False
        )
        if check.returncode != 0:
            raise InstallSkipped(f"'consul version' failed with exit code {check.returncode}")
        os.replace(staged, target)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InstallSkipped(f"the downloaded consul does not run here: {error}") from error
    finally:
        staged.unlink(missing_ok=True)
    return target


def default_install_dir() -> Path:
    """$CONSUL_INSTALL_DIR, else $CONDA_DIR/bin (on PATH on Binder), else ~/.local/bin."""
    if os.environ.get("CONSUL_INSTALL_DIR"):
        return Path(os.environ["CONSUL_INSTALL_DIR"])
    if os.environ.get("CONDA_DIR"):
        return Path(os.environ["CONDA_DIR"]) / "bin"
    return Path.home() / ".local" / "bin"


def main() -> int:
    """Install the pinned Consul; return 0 also when it was skipped (saying why)."""
    pin = read_pin(
        Path(os.environ.get("CONSUL_SHA256_FILE", Path(__file__).with_name("consul.sha256")))
    )
    base = os.environ.get("CONSUL_RELEASES_URL", DEFAULT_RELEASES_URL).rstrip("/")
    url = f"{base}/{pin.version}/{pin.archive}"
    try:
        if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
            here = f"{platform.system()} {platform.machine()}"
            raise InstallSkipped(f"the pinned archive is for Linux x86_64, this is {here}")
        print(f"postBuild: downloading Consul {pin.version} from {url}", flush=True)
        data = download(url)
        verify(data, pin)
        target = install(extract_consul(data), default_install_dir())
    except InstallSkipped as reason:
        print(f"postBuild: Consul NOT installed: {reason}; {FALLBACK}.", flush=True)
        return 0
    print(f"postBuild: installed Consul {pin.version} (SHA-256 verified) at {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
