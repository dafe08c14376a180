"""Service for GET /v2/images (filters, sorting, paging, visibility scope)."""


class ImageListing:
    def __init__(self, conf):
        self.conf = conf
