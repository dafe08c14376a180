"""How much of a file the page cache holds, from mincore(2) on a private mapping of it."""
import ctypes
import mmap
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))


def cached_fraction(path):
    """The share of the file's pages that are in the page cache, 0.0 to 1.0."""
    size = os.path.getsize(path)
    pages = -(-size // mmap.PAGESIZE)
    with open(path, "rb") as handle:
        mapping = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        anchor = ctypes.c_char.from_buffer(mapping)  # the mapping's address, nothing touched
        vector = (ctypes.c_ubyte * pages)()
        if _libc.mincore(ctypes.addressof(anchor), size, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        del anchor
        return sum(byte & 1 for byte in vector) / pages
    finally:
        mapping.close()
