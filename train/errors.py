"""The one exception type users see: a problem they can fix, said in one line."""


class NewsclfError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits non-zero."""
