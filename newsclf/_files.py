"""File helpers: digests, and the hidden temporaries that outputs are written to before they are renamed in place."""

import contextlib
import hashlib
import os
import re
import secrets
import socket
from pathlib import Path

# Hidden names of files and folders being written, beside their target: ".<target>.newsclf-<host>-<pid>-<random>".
# The host and pid say whose they are, so a later run can remove those whose writer died (kill -9, power loss).
# This host as temporary names carry it (alphanumerics only).
HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:20] or "host"
_TEMPORARY = re.compile(r"\..+\.newsclf-(?P<host>[A-Za-z0-9]+)-(?P<pid>[0-9]+)-[0-9a-f]{8}", re.DOTALL)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temporary_beside(target: Path) -> Path:
    """A new hidden name beside ``target`` for a file or folder being written, naming this host and process.

    Temporaries that dead newsclf processes of this host left beside it (killed with -9, say) are removed first.
    """
    _remove_orphans(target.parent)
    return target.with_name(f".{target.name}.newsclf-{HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def remove_temporary(path: Path) -> None:
    """Remove a temporary file, or a temporary folder's files and then the folder; never anything deeper."""
    with contextlib.suppress(OSError):  # gone already, or removed by another run at the same time
        if not path.is_dir() or path.is_symlink():
            path.unlink()
            return
        for entry in os.scandir(path):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        path.rmdir()  # fails, and keeps it, if a folder was made inside: not ours to guess about


def _remove_orphans(folder: Path) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match and _writer_is_gone(match["host"], int(match["pid"])):
            remove_temporary(Path(entry.path))


def _writer_is_gone(host: str, pid: int) -> bool:
    """True only when known: a process of this host that no longer runs (never another host's, never on doubt)."""
    return host == HOST and pid != os.getpid() and os.name == "posix" and not process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)  # signal 0 checks that the process exists and sends nothing
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by another user
        return True
    return True
