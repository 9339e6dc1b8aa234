"""Service images built locally from Debian packages and pushed to the lab registry.

No image can be pulled from a public registry here, so the lab builds its own: a minimal
Debian root file system per image (mmdebstrap once, then ``apt-get install`` in a copy),
imported with ``podman import`` and pushed to the lab registry under ``lab.ruche.invalid/NAME``.
``.invalid`` never resolves: those names are only ever served through the registry mirror.
``ruche images build --push REGISTRY`` (actions/images_build.py) runs the same build for a collective's own
registry, which ruche.toml's ``[images] registry`` then names (orchestrator/images.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from orchestrator.config import LAB_IMAGE_NAMESPACE
from orchestrator.lab.host import run
from orchestrator.lab.rootfs import FILES_DIR, SUITE, bootstrap, package_key

IMAGE_TAG = SUITE
# Debian's previous stable: its builds of the lab services are the older versions that upgrades start from.
OLD_SUITE = "bookworm"
# Raise when the way images are built changes, so that cached images are rebuilt.
BUILD_RECIPE_VERSION = 3


@dataclass(frozen=True)
class LabImage:
    """One locally built service image."""

    name: str
    packages: tuple[str, ...]
    command: tuple[str, ...]
    user: str
    port: int
    # file in orchestrator/lab/files -> (path in the image, mode); installed after the packages
    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    # same, but written before the packages are installed (to steer their maintainer scripts)
    files_before_install: dict[str, tuple[str, int]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    directories: dict[str, str] = field(default_factory=dict)  # path -> owner user
    symlinks: dict[str, str] = field(default_factory=dict)  # path in the image -> target (replacing what is there)
    suite: str = SUITE  # the Debian release its packages come from; also its tag

    @property
    def reference(self) -> str:
        """The image's name as catalogue entries write it."""
        return f"{LAB_IMAGE_NAMESPACE}/{self.name}:{self.suite}"

    def fingerprint(self) -> str:
        """A digest of everything the image is built from (its definition and its files)."""
        digest = hashlib.sha256(f"{BUILD_RECIPE_VERSION}:{self!r}".encode())
        for source in sorted({*self.files, *self.files_before_install}):
            digest.update((FILES_DIR / source).read_bytes())
        return digest.hexdigest()[:16]


def _radicale(suite: str) -> LabImage:
    # Radicale 3.1 (bookworm) reads bcrypt, md5 or plain htpasswd lines; 3.2 and later also sha512 and autodetect
    return LabImage(
        name="radicale",
        suite=suite,
        packages=("radicale", "python3-passlib", "python3-bcrypt"),
        command=("/usr/local/bin/radicale-entrypoint",),
        user="radicale",
        port=5232,
        files={
            "radicale-entrypoint": ("/usr/local/bin/radicale-entrypoint", 0o755),
            ("radicale-3.1.conf" if suite == OLD_SUITE else "radicale.conf"): ("/etc/radicale/ruche.conf", 0o644),
        },
        directories={"/var/lib/radicale": "radicale"},
    )


def _postgresql(suite: str) -> LabImage:
    return LabImage(
        name="postgresql",
        suite=suite,
        packages=("postgresql",),
        command=("/usr/local/bin/postgresql-entrypoint",),
        user="postgres",
        port=5432,
        files={"postgresql-entrypoint": ("/usr/local/bin/postgresql-entrypoint", 0o755)},
        files_before_install={"createcluster.conf": ("/etc/postgresql-common/createcluster.conf", 0o644)},
        environment={"PGDATA": "/var/lib/postgresql/data", "LANG": "C.UTF-8"},
        directories={"/var/lib/postgresql/data": "postgres", "/var/run/postgresql": "postgres"},
    )


def _mediawiki(suite: str) -> LabImage:
    # The lab's Nextcloud-class service: an entrypoint that runs as root, installs into its volume on
    # first start (files of two owners), serves as www-data through Apache, a job-runner sidecar on
    # the same volume, a maintenance CLI, and mail (PEAR Mail over SMTP). bookworm: 1.39, trixie: 1.43.
    return LabImage(
        name="mediawiki",
        suite=suite,
        packages=(
            "mediawiki",
            "php-pgsql",
            "php-intl",
            "php-mail",
            "php-net-smtp",
            "apache2",
            "libapache2-mod-php",
            "ca-certificates",
        ),  # fmt: skip
        command=("/usr/local/bin/mediawiki-entrypoint",),
        user="root",
        port=80,
        files={
            "mediawiki-entrypoint": ("/usr/local/bin/mediawiki-entrypoint", 0o755),
            "mediawiki-jobrunner": ("/usr/local/bin/mediawiki-jobrunner", 0o755),
            "mediawiki-maintenance": ("/usr/local/bin/mediawiki-maintenance", 0o755),
            "mediawiki-count-content": ("/usr/local/bin/mediawiki-count-content", 0o755),
            "mediawiki-ruche-settings.php": ("/etc/mediawiki/ruche-settings.php", 0o644),
            "mediawiki-site.conf": ("/etc/apache2/sites-available/000-default.conf", 0o644),
        },
        environment={"LANG": "C.UTF-8"},
        directories={"/var/lib/mediawiki-data": "root", "/var/lib/mediawiki/cache": "www-data"},
        symlinks={
            "/etc/mediawiki/LocalSettings.php": "/var/lib/mediawiki-data/LocalSettings.php",
            "/var/lib/mediawiki/images": "/var/lib/mediawiki-data/images",
        },
    )


LAB_IMAGES = (
    _radicale(SUITE),
    _postgresql(SUITE),
    _mediawiki(SUITE),
    LabImage(
        name="miniflux",
        packages=("miniflux", "ca-certificates"),
        command=("/usr/bin/miniflux",),
        user="miniflux",
        port=8080,
        environment={"LISTEN_ADDR": "0.0.0.0:8080", "RUN_MIGRATIONS": "1"},
    ),
    # the older versions upgrades are tested from (catalogue entries list them under `versions`)
    _radicale(OLD_SUITE),
    _postgresql(OLD_SUITE),
    _mediawiki(OLD_SUITE),
)


def images_for(catalog, service_ids: Iterable[str]) -> tuple[tuple[LabImage, ...], dict[str, list[str]]]:
    """The lab images the current versions of ``service_ids`` run (application, database, sidecars), in
    ``LAB_IMAGES``'s order, and by service the images it names that the lab does not build (another registry's,
    which the lab cannot reach). Older versions' images are not among them. Raises NotFound for a service the
    catalogue does not hold."""
    wanted: set[str] = set()
    missing: dict[str, list[str]] = {}
    built = {image.reference for image in LAB_IMAGES}
    for service_id in service_ids:
        service = catalog.get(service_id)
        release = service.release()
        named = {release.image, release.database_image or ""} | {s.image for s in service.sidecars if s.image}
        named.discard("")
        wanted |= named
        if named - built:
            missing[service_id] = sorted(named - built)
    return tuple(image for image in LAB_IMAGES if image.reference in wanted), missing


def image_named(name: str, suite: str = SUITE) -> LabImage:
    return next(image for image in LAB_IMAGES if image.name == name and image.suite == suite)


def container_base(cache_dir: Path, suite: str = SUITE) -> Path:
    """Give the cached minimal Debian ``suite`` root file system images start from."""
    return bootstrap(cache_dir / f"container-base-{package_key(suite, ())}", (), cache_dir=cache_dir,
                       what=f"container base ({suite})", suite=suite)  # fmt: skip


def _install_file(root: Path, source: str, destination: str, mode: int) -> None:
    target = root / destination.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FILES_DIR / source, target)
    target.chmod(mode)


def build_rootfs(image: LabImage, base: Path, work_dir: Path) -> Path:
    """Give a root file system for ``image``: a copy of ``base`` with its packages and files."""
    root = work_dir / f"{image.name}-{image.suite}"
    shutil.rmtree(root, ignore_errors=True)
    run(["cp", "-a", "--reflink=auto", base, root], what=f"copy of the container base for {image.name}")
    for source, (destination, mode) in image.files_before_install.items():
        _install_file(root, source, destination, mode)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the build
    policy.chmod(0o755)
    environment = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    run(["chroot", root, "apt-get", "-q", "update"], env=environment, what=f"apt-get update for {image.name}")
    run(
        ["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *image.packages],
        env=environment,
        timeout=1200,
        what=f"apt-get install for {image.name}",
    )
    run(["chroot", root, "apt-get", "clean"], what="apt-get clean")
    for leftover in ("var/lib/apt/lists", "etc/resolv.conf", "usr/sbin/policy-rc.d"):
        path = root / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    for source, (destination, mode) in image.files.items():
        _install_file(root, source, destination, mode)
    for directory, owner in image.directories.items():
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
        run(["chroot", root, "chown", "-R", f"{owner}:", directory], what=f"ownership of {directory}")
    for link, target in image.symlinks.items():
        path = root / link.lstrip("/")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return root


def import_changes(image: LabImage) -> list[str]:
    """Give the ``podman import --change`` instructions (Dockerfile syntax) of ``image``."""
    changes = [
        f"CMD {json.dumps(list(image.command))}",
        f"USER {image.user}",
        f"EXPOSE {image.port}",
        "WORKDIR /",
        f"LABEL org.ruche.lab.fingerprint={image.fingerprint()}",
    ]
    changes += [f"ENV {key}={value}" for key, value in sorted(image.environment.items())]
    return changes


def is_in_registry(registry_address: str, image: LabImage) -> bool:
    """Tell whether the lab registry already holds ``image`` as built from its current definition."""
    repository = f"{LAB_IMAGE_NAMESPACE}/{image.name}"
    try:
        response = requests.get(
            f"http://{registry_address}/v2/{repository}/manifests/{image.fingerprint()}",
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
            },
            timeout=10,
        )
    except requests.RequestException:
        return False
    return response.status_code == 200


LOCAL_REPOSITORY = "localhost/ruche-lab"


def local_reference(image: LabImage) -> str:
    """The name of ``image`` as built in this machine's Podman storage (its tag: the definition's fingerprint)."""
    return f"{LOCAL_REPOSITORY}/{image.name}:{image.fingerprint()}"


def is_built(image: LabImage) -> bool:
    """Tell whether this machine's Podman storage holds ``image`` as built from its current definition."""
    return subprocess.run(["podman", "image", "exists", local_reference(image)], capture_output=True).returncode == 0


def build_local(image: LabImage, *, cache_dir: Path) -> str:
    """Build ``image`` into this machine's Podman storage, unless it is there already; give its local name.

    The same build for the lab (``build_and_push``) and for a collective's registry (``ruche images build``)."""
    local = local_reference(image)
    if is_built(image):
        return local
    work_dir = cache_dir / "image-build"
    work_dir.mkdir(parents=True, exist_ok=True)
    root = build_rootfs(image, container_base(cache_dir, image.suite), work_dir)
    tarball = work_dir / f"{image.name}-{image.suite}.tar"
    try:
        run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tarball, "."], what=f"tar of {image.name}")
        changes = [argument for change in import_changes(image) for argument in ("--change", change)]
        run(
            ["podman", "import", "--quiet", *changes, tarball, local],
            timeout=900,
            what=f"podman import of {image.name}",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        tarball.unlink(missing_ok=True)
    return local


def push(local: str, destination: str, *, tls_verify: bool = True) -> str:
    """Push the local image ``local`` as ``destination`` (REGISTRY/NAME:TAG); give the pushed manifest's digest.

    ``tls_verify=False`` lets Podman speak plain HTTP (or accept an untrusted certificate)."""
    with tempfile.TemporaryDirectory(prefix="ruche-push-") as directory:
        digest_file = Path(directory) / "digest"
        run(
            ["podman", "push", "--quiet", f"--tls-verify={'true' if tls_verify else 'false'}",
             "--digestfile", digest_file, local, destination],
            timeout=900,
            what=f"podman push of {destination}",
        )  # fmt: skip
        return digest_file.read_text().strip()


def build_and_push(image: LabImage, *, registry_address: str, cache_dir: Path) -> str:
    """Build ``image`` and push it to the lab registry (skipped when already there); give its reference."""
    if is_in_registry(registry_address, image):
        return image.reference
    was_built = is_built(image)  # by `ruche images build`, which keeps its images: left as found
    local = build_local(image, cache_dir=cache_dir)
    try:
        remote_repository = f"{registry_address}/{LAB_IMAGE_NAMESPACE}/{image.name}"
        for tag in (image.fingerprint(), image.suite):
            push(local, f"{remote_repository}:{tag}", tls_verify=False)
    finally:
        if not was_built:
            run(["podman", "rmi", "--ignore", local], what="podman rmi")
    return image.reference
