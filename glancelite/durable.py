"""Flushing by path, for what has no open descriptor at hand: a directory after a rename in
it (the rename is durable only once the directory is), or a file someone else wrote."""
import os


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
