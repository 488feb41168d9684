"""``predict --jsonl`` streams: standard input is predicted batch by batch as it arrives (before, all
input was held first: 3.4 GB for a 1 GB stream, the first line after 35 s), and an output that is
also an input is refused instead of overwriting it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf.train.cli import main
from tests.helpers import write_jsonl

BATCH = 1000  # newsclf.batch._BATCH


def test_an_output_that_is_also_an_input_is_refused(tmp_path, capsys, small_model_folder):
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": 1, "text": "Troops advanced."}])
    before = items.read_bytes()
    assert main(["predict", "--jsonl", "--model", str(small_model_folder), str(items), "--output", str(items)]) == 2
    assert "is also an input" in capsys.readouterr().err and items.read_bytes() == before


@pytest.mark.slow  # a CLI process
def test_a_stream_is_predicted_while_it_is_still_open(small_model_folder):
    newsclf = str(Path(sys.executable).parent / "newsclf")
    process = subprocess.Popen(
        [newsclf, "predict", "--jsonl", "--model", str(small_model_folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = json.dumps({"text": "Artillery shelled the port as envoys met in Doha."}) + "\n"
        process.stdin.write(line.encode() * BATCH)
        process.stdin.flush()
        # The input stays open: the first batch's predictions must come anyway.
        first = json.loads(process.stdout.readline())
        assert first["topic"]
    finally:
        # Read through the same buffered reader: communicate() reads the pipe itself and would miss what
        # readline() has already buffered beyond the first line.
        process.stdin.close()
        rest = process.stdout.read()
        process.wait(timeout=120)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == 0 and len(rest.splitlines()) == BATCH - 1
