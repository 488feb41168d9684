"""Every exception newsclf raises on purpose: a problem the user can fix, said in one line."""


class NewsclfError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits non-zero."""


class ModelFormatError(NewsclfError):
    """A folder that is not a model this version of newsclf can load safely."""
