"""Service for /v2/images/{id}/members."""


class MemberService:
    def __init__(self, conf):
        self.conf = conf
