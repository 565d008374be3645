"""Build parity's offline base image: Debian bookworm (minbase + python3) from the machine's own mirror.

No registry is needed: debootstrap fetches Debian packages from the mirror apt already uses (read from
the apt sources at run time, never hard-coded), and the root filesystem is imported as an image. The
image is reused when it already exists. Tests, the demo image and `.ci/run` all start from it.

    python -m conformance.baseimage [NAME]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conformance.dockerhost import connect, image_exists
from conformance.errors import InfrastructureError, ParityError

BASE_IMAGE = os.environ.get("PARITY_BASE_IMAGE", "parity-base:bookworm")
SUITE = "bookworm"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The first Debian archive URI apt is configured with (deb822 `URIs:` or a one-line `deb` entry).

    Security archives are skipped: debootstrap needs the main archive.
    """
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        candidates = re.findall(r"^URIs:\s*(\S+)", text, flags=re.MULTILINE)
        candidates += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, flags=re.MULTILINE)
        for uri in candidates:
            if "security" not in uri:
                return uri
    raise InfrastructureError(
        "no Debian mirror found in the apt sources",
        "configure apt (/etc/apt/sources.list.d/debian.sources) or build the base image elsewhere "
        "and load it",
    )


def ensure_base_image(name: str = BASE_IMAGE, log=print) -> str:
    """Return `name`, building it with debootstrap first if the daemon does not have it."""
    client = connect()
    if image_exists(client, name):
        return name
    if shutil.which("debootstrap") is None:
        raise InfrastructureError(
            f"image {name} is missing and debootstrap is not installed",
            "apt-get install -y debootstrap (then run this again)",
        )
    if os.geteuid() != 0:
        raise InfrastructureError(
            f"image {name} is missing and debootstrap needs root",
            "run `python -m conformance.baseimage` as root once",
        )
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="parity-rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        log(f"building {name}: debootstrap {SUITE} from {mirror} (about a minute)")
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(rootfs), mirror],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise InfrastructureError("debootstrap failed", f"check the mirror {mirror} is reachable", tail)
        tarball = Path(scratch) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
        with tarball.open("rb") as stream:
            client.api.import_image(
                src=stream,
                repository=repository,
                tag=tag,
                changes=[f"ENV PATH={DEFAULT_PATH}", "LABEL org.parity.base=bookworm"],
            )
    if not image_exists(client, name):
        raise InfrastructureError(f"importing {name} did not produce the image", "see `docker images`")
    log(f"built {name}")
    return name


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        print(ensure_base_image(args[0] if args else BASE_IMAGE))
    except ParityError as exc:
        print(f"parity: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
