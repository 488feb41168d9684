"""Output folders that a command fills with its report and may later replace, without ever deleting
what it did not write.

A folder is written in a hidden staging folder beside it and renamed into place; a marker file in
it lists the files the command wrote. An existing folder is accepted only when it is empty or holds
exactly its marker and the files that marker lists, and only those files are deleted when a new
report replaces it. The working folder, its parents, and anything holding the tracking store are
refused before any run starts.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from newsclf._files import temporary_beside
from newsclf.errors import NewsclfError
from newsclf.train.tracking.runs import local_path


@dataclass(frozen=True)
class OutputFolder:
    """The output-folder rules of one command: ``slug`` names its marker file (``.newsclf-<slug>``),
    ``kind`` is what its folders are called in messages, ``command`` who wrote them, and ``example``
    a folder to suggest."""

    slug: str
    kind: str
    command: str
    example: Path

    @property
    def marker(self) -> str:
        """The name of the marker file inside a folder this command wrote."""
        return f".newsclf-{self.slug}"

    def check(self, output: Path, tracking_uri: str, client) -> None:
        """Refuse, before any run starts, an output this command could not fill without deleting others' files."""
        resolved = output.resolve()
        working = Path.cwd().resolve()
        if resolved == working or resolved in working.parents:
            raise NewsclfError(
                f"output {output} is the working folder or holds it; pass --output with a folder of its own, "
                f"such as {self.example}"
            )
        for store in _tracking_paths(tracking_uri, client):
            if resolved == store or resolved in store.parents or store in resolved.parents:
                raise NewsclfError(
                    f"output {output} holds or sits inside the tracking store {store}; pass --output with a folder "
                    "outside it"
                )
        if os.path.lexists(output):
            self._written_files(output)
        # The staging folder is made beside the output, in its parent (created if missing).
        existing = next(parent for parent in resolved.parents if parent.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise NewsclfError(
                f"cannot write output {output}: {existing} is not a folder this process can write in; "
                "pass --output with another folder"
            )

    def new_staging(self, output: Path) -> Path:
        """A new hidden folder beside ``output`` to write the report into."""
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = temporary_beside(output)
        staging.mkdir(mode=0o777)  # the umask applies, as to any new folder (mkdtemp's would be 0700)
        return staging

    def put_in_place(self, staging: Path, names: list[str], output: Path) -> None:
        """Mark ``staging`` as written by this command and make it ``output``; an earlier report there, proven
        again now, goes aside first and is deleted (its listed files only) once the new one is in place."""
        (staging / self.marker).write_text(
            json.dumps({"written_by": self.command, "files": sorted(names)}, indent=2) + "\n", encoding="utf-8"
        )
        if not os.path.lexists(output):
            staging.rename(output)
            return
        old = self._written_files(output)
        aside = temporary_beside(output)
        output.rename(aside)
        try:
            staging.rename(output)
        except BaseException:
            aside.rename(output)
            raise
        try:
            for name in [*old, self.marker]:
                (aside / name).unlink(missing_ok=True)
            aside.rmdir()
        except OSError:
            pass  # a hidden leftover, removed by a later run once this process is gone

    def _written_files(self, folder: Path) -> list[str]:
        """The files an earlier run wrote in ``folder`` as its marker lists them, when the marker and they are
        all that is inside (an empty folder lists none); otherwise the folder is refused."""
        if folder.is_symlink() or not folder.is_dir():
            kind = "a symbolic link" if folder.is_symlink() else "a file"
            raise NewsclfError(f"output {folder} is {kind}, not {self.kind} folder; pass --output with a new folder")
        entries = set(os.listdir(folder))
        listed = self._listed_files(folder) if entries else []
        foreign = sorted(entries - {self.marker, *listed}) if listed is not None else sorted(entries)
        if listed is None or foreign or not all(stat.S_ISREG(os.lstat(folder / name).st_mode) for name in entries):
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise NewsclfError(
                f"output {folder} is not {self.kind} newsclf wrote (it holds {shown or 'other files'}); "
                "pass --output with a new folder, or move its files away yourself"
            )
        return listed

    def _listed_files(self, folder: Path) -> list[str] | None:
        """The file names the marker in ``folder`` lists; None without a readable marker."""
        try:
            names = json.loads((folder / self.marker).read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        plain = isinstance(names, list) and all(
            isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..", self.marker)
            for name in names
        )
        return names if plain else None


def _tracking_paths(tracking_uri: str, client) -> list[Path]:
    """Where the tracking store keeps runs and artifacts on this machine: its SQLite file or folder, the
    local artifact roots of its experiments, and MLflow's default local roots in the working folder."""
    from mlflow.entities import ViewType

    paths = [Path("mlruns"), Path("mlartifacts")]
    store = local_path(tracking_uri)
    if store is not None:
        paths.append(store)
        if store.exists():  # a new SQLite store would be created by asking it
            for experiment in client.search_experiments(view_type=ViewType.ALL):
                if (root := local_path(experiment.artifact_location)) is not None:
                    paths.append(root)
    return [path.resolve() for path in paths]
