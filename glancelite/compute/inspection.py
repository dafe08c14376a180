"""Format checks before a file enters `_base`, and the raw conversion nova would do.

Nova's `fetch_to_raw` inspects every download before use: the detected format must be the
image's `disk_format`, a qcow2 must have no backing file and no external data file
(OSSA-2024-001), a VMDK must be a single-extent file of an allowed create type; then, with
`force_raw_images`, it converts to raw. A file placed in `_base` by someone else skips all
of that (nova's `Image.cache()` only fetches when the file is missing), so the fetcher
makes the same checks itself. The headers are read from the downloaded file in Python;
`qemu-img` (as nova uses it) is run only to convert, after the checks passed.
"""
import os
import re
import struct
import subprocess

HEAD_BYTES = 1 << 20
_QEMU_FORMAT = {"qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc", "vhdx": "vhdx", "vdi": "vdi",
                "ploop": "parallels"}
_RAW_LIKE = ("raw", "ami", "ari", "aki")


class Rejected(Exception):
    """The image's content is not safe to hand to nova, or not what it claims to be."""


def _read_ends(path):
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        size = os.fstat(handle.fileno()).st_size
        tail = b""
        if size >= 512:
            handle.seek(size - 512)
            tail = handle.read(512)
    return head, tail


def detect(head, tail):
    """The format the bytes look like (Glance disk_format names; 'raw' when none)."""
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head[:4] == b"KDMV" or head.lstrip()[:21] == b"# Disk DescriptorFile":
        return "vmdk"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    if head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        return "vdi"
    if head[:8] == b"conectix" or tail[:8] == b"conectix":
        return "vhd"
    if head[:16] in (b"WithoutFreeSpace", b"WithouFreSpacExt"):
        return "ploop"
    if head[:6] == b"LUKS\xba\xbe":
        return "luks"
    if any(head[offset:offset + 5] == b"CD001" for offset in (0x8001, 0x8801, 0x9001)):
        return "iso"
    return "raw"


def _check_qcow2(head):
    if len(head) < 72:
        raise Rejected("qcow2 header is truncated")
    version, backing_offset = struct.unpack(">IQ", head[4:16])
    if backing_offset:
        raise Rejected("qcow2 image has a backing file")
    if version >= 3 and len(head) >= 80:
        incompatible = struct.unpack(">Q", head[72:80])[0]
        if incompatible & 0x4:
            raise Rejected("qcow2 image has an external data file")


def _check_vmdk(head, allowed_types):
    if head[:4] != b"KDMV":
        raise Rejected("VMDK descriptor file without an embedded extent (monolithicFlat or "
                       "split): its extents are other files")
    offset, size = struct.unpack("<QQ", head[28:44])
    start, end = offset * 512, (offset + size) * 512
    if not offset or end > len(head):
        raise Rejected("VMDK has no embedded descriptor in its first MiB")
    descriptor = head[start:end].split(b"\0", 1)[0].decode("ascii", "replace")
    create_type = re.search(r'^\s*createType\s*=\s*"([^"]*)"', descriptor, re.M)
    if not create_type or create_type.group(1) not in allowed_types:
        found = create_type.group(1) if create_type else "none"
        raise Rejected(f"VMDK create type {found!r} is not in [compute] vmdk_allowed_types")
    extents = re.findall(r"^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+(\w+)", descriptor, re.M)
    if len(extents) != 1 or extents[0][1] != "SPARSE":
        raise Rejected("VMDK must have exactly one SPARSE extent (itself)")


def inspect(path, disk_format, vmdk_allowed_types):
    """Check the file against its claimed format; returns the detected format."""
    head, tail = _read_ends(path)
    found = detect(head, tail)
    claimed = (disk_format or "raw").lower()
    if claimed in _RAW_LIKE:
        ok = found == "raw"
    elif claimed == "iso":
        ok = found in ("iso", "raw")      # hybrid ISOs start with an MBR/GPT
    else:
        ok = found == claimed
    if not ok:
        raise Rejected(f"disk_format is {claimed!r} but the data is {found!r}")
    if found == "qcow2":
        _check_qcow2(head)
    elif found == "vmdk":
        _check_vmdk(head, vmdk_allowed_types)
    elif found == "luks":
        raise Rejected("encrypted (LUKS) images are not supported")
    return found


def convert_to_raw(source, target, found_format):
    """qemu-img convert to raw (nova's force_raw_images), with the format given, never probed."""
    qemu_format = _QEMU_FORMAT.get(found_format)
    if qemu_format is None:
        raise Rejected(f"cannot convert {found_format!r} to raw")
    command = ["qemu-img", "convert", "-q", "-f", qemu_format, "-O", "raw", source, target]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError as exc:
        raise Rejected("force_raw_images needs qemu-img, which is not installed") from exc
    if completed.returncode != 0:
        raise Rejected(f"qemu-img convert failed: {completed.stderr.strip()[:300]}")

