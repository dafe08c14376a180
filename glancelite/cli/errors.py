"""Failures a command reports: a message for stderr and the process exit status."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_CORRUPT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CommandError(Exception):
    """A handled failure: print the message and exit with `exit_code` (1 unless said)."""

    def __init__(self, message, exit_code=EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


class HTTPError(CommandError):
    """An error answer from the API; str() is glanceclient's `HTTP <code> <title>: <message>`."""

    def __init__(self, status, detail, message=None):
        super().__init__(message or f"HTTP {detail}")
        self.status = status
        self.detail = detail


class CorruptDownload(CommandError):
    def __init__(self, got, expected):
        super().__init__(f"[Errno 32] Corrupt image download. Hash was {got} expected {expected}",
                         EXIT_CORRUPT)
