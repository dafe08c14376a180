"""Timestamps as Glance stores and shows them: UTC, whole seconds."""
from datetime import datetime, timezone

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow():
    """Naive UTC now (the database keeps naive UTC). Microseconds are stored so images
    created within one second still list newest first; they are shown in whole seconds."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def isotime(value):
    return value.strftime(ISO_FORMAT) if value is not None else None
