"""Service for PATCH /v2/images/{id} (Glance's JSON-patch dialects)."""


class ImageUpdater:
    def __init__(self, conf):
        self.conf = conf
