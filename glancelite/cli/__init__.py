"""glancelite: a glance-style command line client that talks only HTTP to a Glance v2 API."""
