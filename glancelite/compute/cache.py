"""`cache list | prune | verify | precache`: nova's `_base` directory, managed from outside.

Names are nova's: originals are `sha1(image id)`, resized copies `sha1_<bytes>`, downloads in
progress `<name>.part` (and `.converted`). A file is *in use* when a disk under
`instances_path` has it as its qcow2 backing file (read from the qcow2 header, as nova
asks `qemu-img info`), or an instance's `libvirt.xml` names its image as the root disk
(nova records `<nova:root type="image" uuid=...>` there), or `--in-use ID` says so.

prune applies nova's image cache manager rules — with `remove_unused_base_images`, unused
originals older than `remove_unused_original_minimum_age_seconds` and unused resized files
older than `remove_unused_resized_minimum_age_seconds` go, age being now - mtime, re-checked
under nova's lock — and then, what nova lacks, an LRU cap: while the cache's disk usage
(allocated blocks, as nova's get_disk_usage counts) is above `--max-size` (or
`[image_cache] max_size`), the unused file with the oldest mtime goes. fetch touches the
mtime on every use, so mtime order is least-recently-used order.
"""
import contextlib
import os
import random
import re
import stat
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from glancelite.compute import fetch as fetching
from glancelite.compute import locking
from glancelite.compute.registry import RegistryError

ORIGINAL = re.compile(r"^[0-9a-f]{40}$")
RESIZED = re.compile(r"^([0-9a-f]{40})_\d+$")
TEMPORARY = re.compile(r"^([0-9a-f]{40}(?:_\d+)?)\.(part|converted)$")
_ROOT_IMAGE = re.compile(rb"<nova:root\b[^>]*\btype=[\"']image[\"'][^>]*\buuid=[\"']([^\"']+)")
_ROOT_IMAGE_ALT = re.compile(rb"<nova:root\b[^>]*\buuid=[\"']([^\"']+)[\"'][^>]*\btype=[\"']image")


@dataclass
class Entry:
    name: str
    kind: str                 # original | resized | temporary
    path: str
    bytes: int
    allocated: int
    mtime: float
    image_id: str | None = None
    in_use: bool = False

    @property
    def base_name(self):
        """The original's sha1 name this file belongs to."""
        if self.kind == "resized":
            return RESIZED.match(self.name).group(1)
        if self.kind == "temporary":
            return TEMPORARY.match(self.name).group(1).split("_")[0]
        return self.name

    @property
    def lock_name(self):
        return TEMPORARY.match(self.name).group(1) if self.kind == "temporary" else self.name

    def age(self, now):
        return now - self.mtime

    def as_dict(self, now):
        document = asdict(self)
        document["age_seconds"] = round(self.age(now), 1)
        document["mtime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.mtime))
        return document


def scan(conf):
    """The cache's files (originals, resized and temporary); other files are left alone."""
    entries = []
    try:
        names = sorted(os.listdir(conf.base_dir))
    except FileNotFoundError:
        return entries
    for name in names:
        if ORIGINAL.match(name):
            kind = "original"
        elif RESIZED.match(name):
            kind = "resized"
        elif TEMPORARY.match(name):
            kind = "temporary"
        else:
            continue
        path = os.path.join(conf.base_dir, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        entries.append(Entry(name=name, kind=kind, path=path, bytes=info.st_size,
                             allocated=info.st_blocks * 512, mtime=info.st_mtime,
                             image_id=fetching.read_xattr(path, "image_id")))
    return entries


def _qcow2_backing_file(path):
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
            if len(header) < 20 or header[:4] != b"QFI\xfb":
                return None
            offset, length = struct.unpack(">QI", header[8:20])
            if not offset or not 0 < length <= 4096:
                return None
            handle.seek(offset)
            return handle.read(length).decode("utf-8", "replace")
    except OSError:
        return None


def in_use(conf, extra_image_ids=()):
    """Base names in use by disks and instances under instances_path."""
    used = {locking.cache_name(image_id) for image_id in extra_image_ids}
    skip = {os.path.realpath(conf.base_dir), os.path.realpath(conf.lock_dir)}
    try:
        instances = os.listdir(conf.instances_path)
    except FileNotFoundError:
        return used
    for name in instances:
        directory = os.path.join(conf.instances_path, name)
        if not os.path.isdir(directory) or os.path.realpath(directory) in skip \
                or name.startswith("_base"):
            continue
        with contextlib.suppress(OSError):
            for child in os.listdir(directory):
                path = os.path.join(directory, child)
                if child == "libvirt.xml":
                    with open(path, "rb") as handle:
                        text = handle.read(1 << 20)
                    for pattern in (_ROOT_IMAGE, _ROOT_IMAGE_ALT):
                        used.update(locking.cache_name(match.decode())
                                    for match in pattern.findall(text))
                elif os.path.isfile(path):
                    backing = _qcow2_backing_file(path)
                    if backing:
                        base = os.path.basename(backing)
                        used.add(base)
                        resized = RESIZED.match(base)
                        if resized:
                            used.add(resized.group(1))
    return used


def _mark(entries, used):
    for entry in entries:
        entry.in_use = entry.name in used or (entry.kind != "temporary" and entry.base_name in used)


def resolve_ids(entries, registry):
    """Fill in image ids the xattrs did not give, from the images the registry lists."""
    missing = {entry.base_name: entry for entry in entries if entry.image_id is None}
    if not missing or registry is None:
        return
    by_name = {}
    with contextlib.suppress(RegistryError, OSError):
        for image in registry.images():
            name = locking.cache_name(image["id"])
            if name in missing:
                by_name[name] = image["id"]
                if len(by_name) == len(missing):
                    break
    for entry in entries:
        if entry.image_id is None:
            entry.image_id = by_name.get(entry.base_name)


def list_entries(conf, registry=None, extra_in_use=()):
    entries = scan(conf)
    _mark(entries, in_use(conf, extra_in_use))
    resolve_ids(entries, registry)
    return entries


# -- prune -----------------------------------------------------------------------------------

@dataclass
class Removal:
    name: str
    image_id: str | None
    bytes: int
    reason: str


def prune(conf, max_size=None, dry_run=False, extra_in_use=(), now=None):
    """Apply the age rules and the size cap; returns (removed, kept entries, warnings)."""
    now = time.time() if now is None else now
    cap = conf.cache["max_size"] if max_size is None else max_size
    entries = scan(conf)
    used = in_use(conf, extra_in_use)
    _mark(entries, used)
    removed, warnings = [], []

    def remove(entry, reason, check):
        """Delete under nova's lock if `check(entry)` still holds; False if busy or changed."""
        try:
            with locking.image_lock(conf.lock_dir, entry.lock_name, blocking=False):
                try:
                    info = os.lstat(entry.path)
                except FileNotFoundError:
                    return False
                entry.mtime, entry.allocated = info.st_mtime, info.st_blocks * 512
                if not check(entry):
                    return False
                if not dry_run:
                    os.unlink(entry.path)
        except locking.LockTimeout:
            warnings.append(f"{entry.name}: busy (lock held), left alone")
            return False
        except OSError as exc:
            warnings.append(f"{entry.name}: {exc}")
            return False
        removed.append(Removal(entry.name, entry.image_id, entry.allocated, reason))
        return True

    kept = []
    for entry in entries:
        if entry.kind == "temporary":
            # Whoever writes a .part holds the lock; a free lock means it was abandoned.
            if not remove(entry, "abandoned partial download", lambda e: True):
                kept.append(entry)
            continue
        if entry.in_use or not conf.cache["remove_unused_base_images"]:
            kept.append(entry)
            continue
        minimum = conf.cache["remove_unused_original_minimum_age_seconds" if entry.kind ==
                             "original" else "remove_unused_resized_minimum_age_seconds"]
        if entry.age(now) > minimum and remove(
                entry, f"unused for more than {minimum}s",
                lambda e, minimum=minimum: now - e.mtime > minimum):
            continue
        kept.append(entry)
    if cap:
        cache_entries = [entry for entry in kept if entry.kind != "temporary"]
        total = sum(entry.allocated for entry in cache_entries)
        for entry in sorted(cache_entries, key=lambda e: e.mtime):
            if total <= cap:
                break
            if entry.in_use:
                continue
            oldest = entry.mtime
            if remove(entry, f"cache above {cap} bytes (least recently used)",
                      lambda e, oldest=oldest: e.mtime <= oldest):
                total -= entry.allocated
                kept.remove(entry)
        if total > cap:
            warnings.append(f"cache still uses {total} bytes > {cap}: the rest is in use")
    return removed, kept, warnings


# -- verify ----------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    image_id: str | None
    status: str                  # ok | MISMATCH | converted | unknown | not-in-registry | no-hash
    detail: str = ""


def verify(conf, registry, image_ids=(), remove_bad=False, allow_md5_fallback=False):
    """Re-hash cached originals against the registry's os_hash_value (or md5)."""
    wanted = {locking.cache_name(image_id): image_id for image_id in image_ids}
    entries = [entry for entry in scan(conf) if entry.kind == "original"
               and (not wanted or entry.name in wanted)]
    for entry in entries:
        entry.image_id = entry.image_id or wanted.get(entry.name)
    resolve_ids(entries, registry)
    checks = []
    for entry in entries:
        if entry.image_id is None:
            checks.append(Check(entry.name, None, "unknown", "no image id (not in the registry?)"))
            continue
        if fetching.read_xattr(entry.path, "converted"):
            checks.append(Check(entry.name, entry.image_id, "converted",
                                "converted to raw: the registry's hash does not apply"))
            continue
        try:
            image = registry.image(entry.image_id)
        except RegistryError as exc:
            status = "not-in-registry" if exc.status == 404 else "unknown"
            checks.append(Check(entry.name, entry.image_id, status, str(exc)))
            continue
        try:
            expected, main = fetching.expected_digests(image, allow_md5_fallback)
        except fetching.FetchError as exc:
            checks.append(Check(entry.name, entry.image_id, "no-hash", str(exc)))
            continue
        if not expected:
            checks.append(Check(entry.name, entry.image_id, "no-hash", "the registry has no hash"))
            continue
        with locking.image_lock(conf.lock_dir, entry.name):
            if not os.path.exists(entry.path):
                continue
            bad = fetching.hash_file(entry.path, expected)
            if not bad:
                checks.append(Check(entry.name, entry.image_id, "ok", main))
                continue
            detail = f"{', '.join(bad)} mismatch"
            if remove_bad and not _used(conf, entry):
                os.unlink(entry.path)
                detail += "; removed"
            elif remove_bad:
                detail += "; in use, kept"
            checks.append(Check(entry.name, entry.image_id, "MISMATCH", detail))
    for name, image_id in wanted.items():
        if not any(entry.name == name for entry in entries):
            checks.append(Check(name, image_id, "not-cached"))
    return checks


def _used(conf, entry):
    return entry.name in in_use(conf)


# -- precache --------------------------------------------------------------------------------

@dataclass
class Precached:
    image_id: str
    status: str                  # cached | existing | error (nova's cache_images words)
    exit_code: int = 0
    detail: str = ""
    result: dict | None = None


def precache(fetcher, image_ids, concurrency=1, jitter=0.0):
    """Fetch several images, `concurrency` at a time, each after a random 0..jitter s pause."""
    unique = list(dict.fromkeys(image_ids))

    def one(image_id):
        if jitter:
            time.sleep(random.uniform(0, jitter))
        try:
            result = fetcher.fetch(image_id)
        except fetching.FetchError as exc:
            return Precached(image_id, "error", exc.exit_code, str(exc))
        status = "existing" if result.method == "cache-hit" else "cached"
        return Precached(image_id, status, 0, result.method, result.as_dict())

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, unique))
