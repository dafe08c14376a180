"""Which local file, if any, a `file://` image location stands for.

Nova's old handler (and the seed's "Image download: how it works") works like this: the
glance filesystem store attaches `{"id", "mountpoint"}` to each location; a compute node
that mounts the same share lists it under `[image_file_url:NAME]` with the same id and its
own mountpoint; the location's path, which starts with glance's mountpoint, is moved under
the local one. Nova did a plain string replace and copied whatever it found there.

Location metadata is written by image owners (PATCH /locations) as well as by the store,
so everything in it is untrusted. Here a location maps only when:

- the scheme is allowed (`file` / `filesystem`) and the URL names no other host;
- no path segment of the URL or of glance's mountpoint is `..` (also percent-encoded)
  and there is no NUL byte;
- glance's mountpoint is a prefix of the path at a `/` boundary (nova's `startswith` also
  matched `/srv/images2` for `/srv/images`);
- after `realpath` the file is still under the realpath of the local mountpoint, so a
  symlink inside the share cannot lead out of it.

fetch.py then opens the result with O_NOFOLLOW, checks the opened file's real path again
(against a swap after these checks), that it is a regular file of the image's size, and
verifies its hash after copying.
"""
import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from glancelite.compute.config import FILE_SCHEMES


class Refused(Exception):
    """This location cannot be used; the message says why."""


@dataclass(frozen=True)
class Mapped:
    url: str
    local: str         # the path under the local mountpoint, as configured
    path: str          # the same after realpath: what is opened
    mountpoint: str    # realpath of the local mountpoint it must stay under
    filesystem: str    # [image_file_url:NAME] name, or "legacy"


def candidates(image, api_locations=None):
    """Locations in the order to try: the 2.17 API's list, else `locations`, else
    `direct_url` with empty metadata (as nova appended it)."""
    if api_locations:
        found = api_locations
    elif isinstance(image.get("locations"), list) and image["locations"]:
        found = image["locations"]
    elif image.get("direct_url"):
        found = [{"url": image["direct_url"], "metadata": {}}]
    else:
        found = []
    result = []
    for location in found:
        if isinstance(location, dict) and isinstance(location.get("url"), str):
            metadata = location.get("metadata")
            result.append((location["url"], metadata if isinstance(metadata, dict) else {}))
    return result


def _segments(path):
    return [segment for segment in path.split("/") if segment]


def _check_path(path, what):
    if "\x00" in path:
        raise Refused(f"{what} contains a NUL byte")
    if any(segment in ("..", ".") for segment in _segments(path)):
        raise Refused(f"{what} contains a '..' or '.' segment")
    if not path.startswith("/"):
        raise Refused(f"{what} is not an absolute path")


def _contained(path, mountpoint):
    return path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")


def map_location(url, metadata, filesystems, allowed_schemes, allow_legacy=False):
    """The Mapped local file for one location, or raise Refused saying why."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        raise Refused(f"scheme {scheme or '(none)'!r} is not in allowed_direct_url_schemes")
    if scheme not in FILE_SCHEMES:
        raise Refused(f"scheme {scheme!r} has no direct download handler here")
    if parts.netloc not in ("", "localhost"):
        raise Refused(f"file URL names a host ({parts.netloc!r})")
    if parts.query or parts.fragment:
        raise Refused("file URL has a query or fragment")
    raw_path = parts.path
    _check_path(raw_path, "URL path")
    path = unquote(raw_path)
    _check_path(path, "URL path")
    if not filesystems:
        if not allow_legacy:
            raise Refused("no [image_file_url] filesystems configured (legacy same-path "
                          "mapping needs --allow-legacy-paths)")
        local_mount, local_path, name = "/", path, "legacy"
    else:
        glance_id = metadata.get("id")
        glance_mount = metadata.get("mountpoint")
        if not isinstance(glance_id, str) or not isinstance(glance_mount, str) or \
                not glance_id or not glance_mount:
            raise Refused("location metadata lacks 'id' and 'mountpoint'")
        matching = [fs for fs in filesystems if fs.id == glance_id]
        if not matching:
            raise Refused(f"no [image_file_url:*] section has id {glance_id!r}")
        _check_path(glance_mount, "metadata mountpoint")
        glance_mount = "/" + "/".join(_segments(glance_mount))
        if not _contained(path, glance_mount) or path.rstrip("/") == glance_mount.rstrip("/"):
            raise Refused(f"URL path is not under the location's mountpoint {glance_mount!r}")
        relative = path[len(glance_mount.rstrip("/")):].lstrip("/")
        filesystem = matching[0]
        local_mount = filesystem.mountpoint
        local_path = os.path.join(local_mount, relative)
        name = filesystem.name
    real_mount = os.path.realpath(local_mount)
    real_path = os.path.realpath(local_path)
    if real_path == real_mount or not _contained(real_path, real_mount):
        raise Refused(f"{local_path} resolves to {real_path}, outside the mount {real_mount}")
    return Mapped(url=url, local=local_path, path=real_path, mountpoint=real_mount, filesystem=name)


def still_contained(fd, mapped):
    """After opening: the file the descriptor refers to is still inside the mount."""
    try:
        actual = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True     # no /proc: the O_NOFOLLOW open of a realpath is what we have
    return actual != mapped.mountpoint and _contained(actual, mapped.mountpoint)
