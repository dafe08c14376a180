"""glancelite: a small image registry speaking the OpenStack Glance v2 API."""
