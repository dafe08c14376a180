"""The compute-node fetcher: get images into nova's `_base` cache, verified.

`glancelite-compute fetch IMAGE_ID` (also `glancelite compute fetch`) does what nova's
image download did when it still had a `file://` handler, and what its cache manager does,
with the checks nova never made:

- config.py    nova.conf option names ([glance], [image_file_url], [image_cache], ...)
- registry.py  the Glance v2 HTTP API, stdlib only; credentials go to the api servers only
- locations.py file:// locations mapped onto local mounts, with containment checks
- locking.py   the same lock file nova takes for a base image
- inspection.py format checks (backing files, data files, VMDK types) and raw conversion
- fetch.py     lock, cache hit, direct copy or resumable HTTP, verify, fsync, rename
- cache.py     list, prune (nova's age rules plus an LRU size cap), verify, precache
- cli.py       the command line (`register(subparsers)` for the glancelite CLI, `main`)

This is client code: it talks to the registry over HTTP only and imports nothing of the
server except `glancelite.hashing` (threaded multi-hashing).
"""
