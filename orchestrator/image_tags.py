"""The tags of an image's repository, read through the OCI distribution API, and which of them are newer
versions than the one a catalogue entry lists (what `ruche catalog outdated` shows).

A registry is asked as a server's Podman would pull: through the workspace's mirror when one is set and
the image's registry is mirrored (the mirror holds ``REGISTRY/REPOSITORY``), else the registry itself
(Docker Hub's API is ``registry-1.docker.io``; one-part names are under ``library/``). Registries that
ask for a token (``401`` with ``WWW-Authenticate: Bearer realm=...``) get an anonymous one, as
``docker pull`` does; listings are read page by page (``Link: <...>; rel="next"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from orchestrator.config import RegistrySettings
from orchestrator.errors import OperationFailed

DOCKER_HUB = "docker.io"
PAGE_SIZE = 1000
MOST_PAGES = 50
_BEARER = re.compile(r'(\w+)="([^"]*)"')
_NUMERIC = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class ImageName:
    registry: str
    repository: str
    tag: str | None


def parse_image(reference: str) -> ImageName:
    """Split ``reference`` (``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]``) as Podman and Docker do."""
    name = reference.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return ImageName(registry, path, tag)


def tags_url(image: ImageName, settings: RegistrySettings) -> str:
    """The ``tags/list`` address asked for ``image`` (through the mirror when it serves that registry)."""
    if settings.mirror and image.registry in settings.mirrored_registries:
        scheme = "http" if settings.insecure else "https"
        return f"{scheme}://{settings.mirror}/v2/{image.registry}/{image.repository}/tags/list"
    host = "registry-1.docker.io" if image.registry == DOCKER_HUB else image.registry
    return f"https://{host}/v2/{image.repository}/tags/list"


def _anonymous_token(session: requests.Session, challenge: str, timeout: float) -> str:
    fields = dict(_BEARER.findall(challenge))
    realm = fields.pop("realm", None)
    if not challenge.lower().startswith("bearer") or not realm:
        raise OperationFailed(f"the registry asks for credentials ruche does not have: {challenge or 'no challenge'}")
    answer = session.get(realm, params=fields, timeout=timeout)
    answer.raise_for_status()
    body = answer.json()
    token = body.get("token") or body.get("access_token")
    if not token:
        raise OperationFailed(f"the registry's token service ({realm}) gave no token")
    return token


def list_tags(url: str, *, session: requests.Session | None = None, timeout: float = 15) -> list[str]:
    """Every tag of the repository at ``url`` (a ``.../tags/list`` address); raises OperationFailed with the
    registry's answer."""
    session = session or requests.Session()
    headers: dict[str, str] = {}
    tags: list[str] = []
    next_url: str | None = f"{url}?n={PAGE_SIZE}"
    pages = 0
    try:
        while next_url and pages < MOST_PAGES:
            answer = session.get(next_url, headers=headers, timeout=timeout)
            if answer.status_code == 401 and "Authorization" not in headers:
                headers["Authorization"] = "Bearer " + _anonymous_token(
                    session, answer.headers.get("WWW-Authenticate", ""), timeout)  # fmt: skip
                continue
            if answer.status_code != 200:
                raise OperationFailed(f"{url}: HTTP {answer.status_code}: {answer.text.strip()[:300]}")
            tags += answer.json().get("tags") or []
            pages += 1
            link = answer.links.get("next", {}).get("url")
            next_url = urljoin(url, link) if link else None
    except requests.RequestException as error:
        raise OperationFailed(f"{url}: {error}") from error
    except ValueError as error:
        raise OperationFailed(f"{url}: not a tag listing ({error})") from error
    return tags


def version_key(version: str) -> tuple[int, ...] | None:
    """``"34.0.10"`` -> ``(34, 0, 10)``; None for what is not dotted numbers (``"trixie"``, ``"latest"``)."""
    return tuple(int(part) for part in version.split(".")) if _NUMERIC.match(version) else None


def versions_in_tags(tags: list[str], current_tag: str | None, version: str) -> dict[str, str]:
    """The versions that ``tags`` name, by the entry's scheme: ``{version: tag}``.

    When the entry's tag holds its version (``34.0.2-apache`` for 34.0.2) only tags of the same shape count
    (``34.0.4-apache``, not ``34.0.4-fpm``); otherwise (a lab image tagged ``trixie``) tags that are plain
    versions (``3.5.4``, ``v3.5.4``) do."""
    prefix, suffix = "", ""
    if current_tag and version in current_tag:
        prefix, _, suffix = current_tag.partition(version)
    found = {}
    for tag in tags:
        if not (tag.startswith(prefix) and tag.endswith(suffix)) or len(tag) <= len(prefix) + len(suffix):
            continue
        middle = tag[len(prefix) : len(tag) - len(suffix)]
        if not prefix and middle.startswith("v"):
            middle = middle[1:]
        if version_key(middle) is not None:
            found[middle] = tag
    return found
