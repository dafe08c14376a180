"""Virtual size from the first bytes of an upload, as Glance's format inspector reports it.

Only what is cheap and certain: raw images (virtual size = size) and qcow2 (the size field
of its header). Anything else leaves virtual_size null, as Glance does for formats it does
not recognise.
"""
QCOW2_MAGIC = b"QFI\xfb"
_HEADER_BYTES = 512


class FormatSniffer:
    def __init__(self):
        self.header = b""

    def watch(self, chunks):
        """Pass chunks through unchanged, keeping the image's first bytes."""
        for chunk in chunks:
            if len(self.header) < _HEADER_BYTES:
                self.header += bytes(chunk[:_HEADER_BYTES - len(self.header)])
            yield chunk

    def virtual_size(self, disk_format, container_format, size):
        if container_format != "bare" or size == 0:
            return None
        if disk_format == "qcow2" and self.header[:4] == QCOW2_MAGIC and len(self.header) >= 32:
            return int.from_bytes(self.header[24:32], "big")
        if disk_format == "raw":
            return size
        return None
