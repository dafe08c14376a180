"""Timestamps as Glance stores and shows them: UTC, whole seconds."""
from datetime import datetime, timezone

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow():
    """Naive UTC now without fractions (the database keeps naive UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def isotime(value):
    return value.strftime(ISO_FORMAT) if value is not None else None
