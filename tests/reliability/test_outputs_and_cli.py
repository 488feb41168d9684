"""Issue #12, outputs and CLI manners: what newsclf writes, deletes and prints when things go wrong.

Each test names the fault it injects; the slow ones run the real command in a subprocess.
"""

import contextlib
import errno
import io
import json
import os
import shlex
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy.exc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from newsclf.batch import jsonl_articles, temporary_beside, write_jsonl
from newsclf.errors import NewsclfError
from newsclf.train import cli
from newsclf.train.evaluation.evaluate import ReportSettings
from newsclf.train.jobs.evaluate import EvaluationRequest, evaluate
from tests.helpers import corpus_slice, new_store
from tests.helpers import write_jsonl as write_rows

FAST = ReportSettings(resamples=200)
CHAMPION = "models:/test-model@champion"
NEWSCLF = str(Path(sys.executable).with_name("newsclf"))


@contextlib.contextmanager
def _umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _dead_pid() -> int:
    """The pid of a process that has run and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _orphan_name(target: Path, pid: int) -> str:
    """The name a writer with ``pid`` on this host gives its temporary for ``target``."""
    return temporary_beside(target).name.replace(f"-{os.getpid()}-", f"-{pid}-")


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsclf: error: "), lines
    return lines[0]


def _forbid_model_loading(monkeypatch) -> None:
    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the problem was found")

    monkeypatch.setattr("newsclf.loading.load_model", load_model)


# 1. evaluate --output: never deletes what it did not write.


def _runs(uri: str):
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_evaluate_refuses_a_folder_holding_files_it_did_not_write(trained_store, tmp_path):
    _, uri, _ = trained_store
    folder = tmp_path / "mine"
    (folder / "drafts").mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")  # once enough for the whole folder to be deleted
    (folder / "notes.txt").write_text("keep me")
    (folder / "drafts" / "q3.md").write_text("keep me too")
    before, runs = _tree(folder), len(_runs(uri))
    with pytest.raises(
        NewsclfError, match=r"is not an evaluation report newsclf wrote \(it holds drafts, metrics.json, notes.txt\)"
    ):
        evaluate(EvaluationRequest(CHAMPION, output=folder, settings=FAST), uri)
    assert _tree(folder) == before and len(_runs(uri)) == runs


@pytest.mark.parametrize("where", ["working folder", "its parent", "store folder", "mlruns", "artifact root"])
def test_evaluate_refuses_the_working_folder_its_parents_and_the_tracking_store(trained_store, where):
    _, uri, trained = trained_store
    Path("metrics.json").write_text("{}")
    Path("mlflow.db").write_text("a store of someone's")
    store_folder = Path(uri.removeprefix("sqlite:///")).parent
    artifact_root = Path(MlflowClient(uri).get_experiment(_experiment_of(uri, trained.run_id)).artifact_location)
    output, message = {
        "working folder": (Path("."), "is the working folder or holds it"),
        "its parent": (Path(".."), "is the working folder or holds it"),
        "store folder": (store_folder, "holds or sits inside the tracking store"),
        "mlruns": (Path("mlruns"), "holds or sits inside the tracking store"),
        "artifact root": (artifact_root.parent, "holds or sits inside the tracking store"),
    }[where]
    before, runs = _tree(Path.cwd()), len(_runs(uri))
    with pytest.raises(NewsclfError, match=message):
        evaluate(EvaluationRequest(CHAMPION, output=output, settings=FAST), uri)
    assert _tree(Path.cwd()) == before and len(_runs(uri)) == runs and Path(uri.removeprefix("sqlite:///")).is_file()


def _experiment_of(uri: str, run_id: str) -> str:
    return MlflowClient(uri).get_run(run_id).info.experiment_id


def test_a_report_folder_is_replaced_only_while_it_holds_only_what_evaluation_wrote(trained_store, tmp_path):
    _, uri, _ = trained_store
    output = tmp_path / "reports" / "q3"
    first = evaluate(EvaluationRequest(CHAMPION, output=output, settings=FAST), uri)
    marker = json.loads((output / ".newsclf-evaluation").read_text())
    assert set(marker["files"]) == {path.name for path in output.iterdir()} - {".newsclf-evaluation"}
    assert "report.md" in marker["files"]

    second = evaluate(EvaluationRequest(CHAMPION, output=output, settings=FAST), uri)
    assert (
        second.run_id in (output / "report.md").read_text() and first.run_id not in (output / "report.md").read_text()
    )
    assert sorted(path.name for path in output.parent.iterdir()) == ["q3"]  # no staging or old copy left beside it

    (output / "my-notes.md").write_text("added by hand")
    with pytest.raises(NewsclfError, match=r"not an evaluation report newsclf wrote \(it holds my-notes.md\)"):
        evaluate(EvaluationRequest(CHAMPION, output=output, settings=FAST), uri)
    assert (output / "my-notes.md").read_text() == "added by hand" and (output / "report.md").is_file()


def test_an_empty_folder_is_a_new_folder(trained_store, tmp_path):
    _, uri, _ = trained_store
    (tmp_path / "empty").mkdir()
    result = evaluate(EvaluationRequest(CHAMPION, output=tmp_path / "empty", settings=FAST), uri)
    assert (result.report_dir / "report.md").is_file()


# 6. (evaluation) the report gets the permissions of any new folder and file, not mkdtemp's 0700.


def test_the_report_gets_ordinary_permissions(trained_store, tmp_path):
    _, uri, _ = trained_store
    with _umask(0o022):
        result = evaluate(EvaluationRequest(CHAMPION, output=tmp_path / "r", settings=FAST), uri)
    assert _mode(result.report_dir) == 0o755
    assert {_mode(path) for path in result.report_dir.iterdir()} == {0o644}


# 9. (evaluation) a staging folder a killed evaluation left is removed by the next one.


def test_evaluation_removes_the_staging_folder_a_dead_run_left(trained_store, tmp_path):
    _, uri, _ = trained_store
    output = tmp_path / "r"
    orphan = tmp_path / _orphan_name(output, _dead_pid())
    orphan.mkdir()
    (orphan / "report.md").write_text("half written")
    lookalike = tmp_path / ".r.newsclf-elsewhere-1-0000abcd"  # another host's: never ours to judge
    lookalike.mkdir()
    evaluate(EvaluationRequest(CHAMPION, output=output, settings=FAST), uri)
    assert sorted(path.name for path in tmp_path.iterdir()) == [lookalike.name, "r"]


# 2. SIGTERM is handled like Ctrl-C.


def _parser_with(handler):
    import argparse

    parser = argparse.ArgumentParser(prog="newsclf")
    parser.set_defaults(handler=handler)
    return parser


def test_sigterm_ends_the_mlflow_run_failed_and_exits_143(tmp_path, capsys):
    uri = new_store(tmp_path / "mlflow.db")
    cleaned = []

    def handler(args):
        mlflow.set_tracking_uri(uri)
        try:
            with mlflow.start_run(experiment_id=MlflowClient(uri).create_experiment("sigterm")):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)
        finally:
            cleaned.append(True)
        return 0

    def ignore(signum, frame):  # what the test process does with a SIGTERM that run_command leaves unhandled
        pass

    previous = signal.signal(signal.SIGTERM, ignore)
    try:
        assert cli.run_command(_parser_with(handler), [], "newsclf") == 143
        assert signal.getsignal(signal.SIGTERM) is ignore  # its handler lasts only as long as the command
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err.strip().splitlines()[-1] == "newsclf: interrupted"
    assert cleaned and [run.info.status for run in _runs(uri)] == ["FAILED"]


@pytest.mark.slow
def test_sigterm_stops_newsclf_train_with_its_run_failed(tmp_path):
    data = write_rows(tmp_path / "slice.jsonl", corpus_slice(12))
    uri = new_store(tmp_path / "mlflow.db")
    process = subprocess.Popen(
        [NEWSCLF, "train", "--data", str(data), "--tracking-uri", uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"MLFLOW_TRACKING_URI": ""},
    )
    seen = []
    for line in process.stderr:  # progress lines; the run exists once fitting starts
        seen.append(line)
        if "fitting topic model" in line:
            process.send_signal(signal.SIGTERM)
            break
    _, rest = process.communicate(timeout=60)
    errors = "".join(seen) + rest
    assert process.returncode == 143, errors
    assert "newsclf: interrupted" in rest and "Traceback" not in errors
    assert [run.info.status for run in _runs(uri)] == ["FAILED"]


# 3. A reader that goes away, and closed standard streams: no traceback.


def test_a_closed_pipe_on_standard_output_is_a_quiet_exit_141(small_model_folder, tmp_path, monkeypatch, capsys):
    reader, writer = os.pipe()
    os.close(reader)  # the reader went away, as `head -1` does after its line
    (tmp_path / "a.txt").write_text("Troops shelled the port.")
    with open(writer, "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert cli.main(["predict", "--model", str(small_model_folder), str(tmp_path / "a.txt")]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "stream, argv, message",
    [
        ("stdin", [], "standard input is closed; pass article files"),
        ("stdout", ["a.txt"], "standard output is closed; pass --output"),
    ],
)
def test_closed_standard_streams_are_one_line_errors(stream, argv, message, tmp_path, monkeypatch, capsys):
    Path("a.txt").write_text("Troops shelled the port.")
    monkeypatch.setattr(sys, stream, None)
    _forbid_model_loading(monkeypatch)
    assert cli.main(["predict", *argv]) == 2
    assert message in _one_error_line(capsys)


@pytest.mark.slow
def test_newsclf_predict_into_head_ends_quietly(small_model_folder, tmp_path):
    records = write_rows(tmp_path / "many.jsonl", [{"id": i, "text": "Troops shelled the port."} for i in range(3000)])
    with subprocess.Popen(
        [NEWSCLF, "predict", "--model", str(small_model_folder), "--jsonl", str(records)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    ) as process:
        first = process.stdout.readline()  # then go away, as `| head -1` does
        process.stdout.close()
        errors = process.stderr.read().decode()
        assert process.wait(timeout=60) == 141 and errors == ""
    assert json.loads(first)["id"] == 0


@pytest.mark.slow
def test_newsclf_predict_with_closed_standard_streams(small_model_folder, tmp_path):
    (tmp_path / "a.txt").write_text("Troops shelled the port.")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 talks resumed.".encode("latin-1"))
    predict = f"{shlex.quote(NEWSCLF)} predict --model {shlex.quote(str(small_model_folder))}"
    commands = {
        "stdin": f"{predict} <&-",
        "stdout": f"{predict} a.txt >&-",
        "stdout with --output": f"{predict} a.txt --output out.jsonl >&-",
        "stderr": f"{predict} latin1.txt 2>&-",  # its warning must not fall into the predictions
    }
    processes = {
        name: subprocess.Popen(command, shell=True, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, command in commands.items()
    }
    results = {name: (process.communicate(timeout=60), process.returncode) for name, process in processes.items()}
    for name, message in (("stdin", "standard input is closed"), ("stdout", "standard output is closed")):
        (_, err), code = results[name]
        assert code == 2 and err.decode().startswith(f"newsclf: error: {message}"), results[name]
        assert err.decode().count("\n") == 1
    (_, err), code = results["stdout with --output"]
    assert code == 0 and "wrote 1 predictions" in err.decode()
    (out, _), code = results["stderr"]
    assert code == 0 and [json.loads(line)["id"] for line in out.decode().splitlines()] == ["latin1.txt"]


# 4. An id JSON cannot carry is an error while reading, naming the line.


@pytest.mark.parametrize("id_text", ["NaN", "Infinity", "-Infinity", '["doc", NaN]', '{"n": Infinity}'])
def test_an_id_that_is_not_json_is_named_with_its_line(id_text, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1, "text": "fine"}\n{"id": ' + id_text + ', "text": "Troops shelled the port."}\n')
    with pytest.raises(NewsclfError, match=r"in.jsonl line 2: the id holds NaN or Infinity"):
        list(jsonl_articles([str(path)], io.BytesIO(), print))


def test_any_other_json_value_is_an_id(tmp_path):
    ids = ["a", 3, 2.5, None, True, ["doc", 1], {"source": "wire", "n": 7}]
    path = write_rows(tmp_path / "in.jsonl", [{"id": value, "text": "x"} for value in ids])
    assert [article.id for article in jsonl_articles([str(path)], io.BytesIO(), print)] == ids


def test_a_nan_id_fails_before_the_model_loads(tmp_path, monkeypatch, capsys):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": NaN, "text": "Troops shelled the port."}\n')
    _forbid_model_loading(monkeypatch)
    assert cli.main(["predict", "--jsonl", str(path)]) == 2
    assert "in.jsonl line 1: the id holds NaN" in _one_error_line(capsys)


def test_numbers_and_nesting_json_cannot_read_are_named(tmp_path):
    path = tmp_path / "in.jsonl"
    for line in ('{"id": ' + "9" * 5000 + ', "text": "x"}', '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        path.write_text(line + "\n")
        with pytest.raises(NewsclfError, match="in.jsonl line 1: cannot read this JSON"):
            list(jsonl_articles([str(path)], io.BytesIO(), print))


# 5. predict --output that cannot be written fails before the model loads.


def test_an_output_that_is_a_folder_fails_before_the_model_loads(tmp_path, monkeypatch, capsys):
    (tmp_path / "a.txt").write_text("Troops shelled the port.")
    (tmp_path / "out").mkdir()
    _forbid_model_loading(monkeypatch)
    assert cli.main(["predict", "--output", str(tmp_path / "out"), str(tmp_path / "a.txt")]) == 2
    assert f"cannot write {tmp_path / 'out'}: it is a folder" in _one_error_line(capsys)


def test_an_output_in_a_read_only_folder_fails_before_the_model_loads(tmp_path, monkeypatch, capsys):
    (tmp_path / "a.txt").write_text("Troops shelled the port.")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root writes anywhere: have the folder refuse new files as it would for a user
        real_open = os.open

        def refusing_open(path, flags, *args, **kwargs):
            if Path(path).parent == locked and flags & os.O_CREAT:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    _forbid_model_loading(monkeypatch)
    assert cli.main(["predict", "--output", str(locked / "out.jsonl"), str(tmp_path / "a.txt")]) == 2
    line = _one_error_line(capsys)
    assert f"cannot create files in {locked} (Permission denied)" in line and "check its permissions" in line
    assert list(locked.iterdir()) == []


# 6. Written files get the permissions open(..., "w") gives.


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_predictions_file_gets_the_umask_permissions(mask, expected, tmp_path):
    with _umask(mask):
        write_jsonl([{"id": 1}], str(tmp_path / "out.jsonl"), io.StringIO())
    assert _mode(tmp_path / "out.jsonl") == expected


def test_a_replaced_predictions_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    write_jsonl([{"id": 1}], str(target), io.StringIO())
    assert _mode(target) == 0o640 and json.loads(target.read_text()) == {"id": 1}


# 7. A DataFrame without columns says what to pass.


def test_a_dataframe_without_columns_says_what_to_pass(tiny_model):
    message = "the DataFrame has no columns; pass one with a 'text' column"
    for frame in (pd.DataFrame(), pd.DataFrame(index=[0, 1])):
        with pytest.raises(ValueError, match=message):
            tiny_model.predict(frame)
        with pytest.raises(ValueError, match=message):
            tiny_model.predict_frame(frame)


# 8. The disk or the store failing is one line and exit 1; bugs keep their traceback.


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/mlruns/1/model.joblib"),
            "No space left on device: /data/mlruns/1/model.joblib; free some disk space",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/data/reports"),
            "Permission denied: /data/reports; check the permissions of that path",
        ),
        (
            sqlalchemy.exc.OperationalError(
                "INSERT INTO metrics VALUES (?)", {}, sqlite3.OperationalError("database is locked")
            ),
            "tracking store failed: (sqlite3.OperationalError) database is locked; another process is writing",
        ),
        (
            MlflowException("(sqlite3.OperationalError) database is locked\n[SQL: UPDATE runs SET status=?]\n" * 50),
            "tracking store failed: (sqlite3.OperationalError) database is locked; another process is writing",
        ),
        (
            MlflowException("API request to http://mlflow:5000 failed: 503\nbody..."),
            "tracking store failed: API request to http://mlflow:5000 failed: 503; check the tracking store",
        ),
    ],
)
def test_machine_and_store_failures_are_one_line_and_exit_1(error, expected, monkeypatch, capsys):
    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_train", fail)
    assert cli.main(["train"]) == 1
    assert _one_error_line(capsys).startswith(f"newsclf: error: {expected}")


def test_programming_errors_keep_their_traceback(monkeypatch):
    def broken(args):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(cli, "_train", broken)
    with pytest.raises(TypeError):
        cli.main(["train"])


# 9. Temporaries a killed writer left are removed by the next run, and nothing else is.


def test_stale_temporaries_of_dead_writers_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "out.jsonl"
    dead, alive = _orphan_name(target, _dead_pid()), _orphan_name(target, os.getppid())
    other_host = ".out.jsonl.newsclf-elsewhere-1-0000abcd"
    for name in (dead, alive, other_host, ".out.jsonl.abcd1234", "out.jsonl.newsclf-x-1-0000abcd"):
        (tmp_path / name).write_text("partial")
    write_jsonl([{"id": 1}], str(target), io.StringIO())
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [alive, other_host, ".out.jsonl.abcd1234", "out.jsonl.newsclf-x-1-0000abcd", "out.jsonl"]
    )


@pytest.mark.slow
def test_a_writer_killed_with_sigkill_leaves_one_orphan_until_the_next_run(tmp_path):
    target = tmp_path / "out.jsonl"
    writer = (
        "import io, sys, time\n"
        "from newsclf.batch import write_jsonl\n"
        "def rows():\n"
        "    yield {'id': 1}\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "write_jsonl(rows(), sys.argv[1], io.StringIO())\n"
    )
    with subprocess.Popen([sys.executable, "-c", writer, str(target)], stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline().strip() == "writing"
        process.kill()
    (orphan,) = tmp_path.iterdir()
    assert orphan.name.startswith(".out.jsonl.newsclf-") and f"-{process.pid}-" in orphan.name
    write_jsonl([{"id": 2}], str(target), io.StringIO())
    assert [path.name for path in tmp_path.iterdir()] == ["out.jsonl"]
