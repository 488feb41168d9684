"""``python -m bench scale``: streaming training on synthetic corpora of growing size.

Each corpus is N articles of four CEP sentences (~75 words) drawn at random, labelled with the first
sentence's topic and tone, written as JSON Lines in a temporary folder (deleted afterwards, never
in the project). ``newsclf train`` runs on it as a separate process per size and mode, into a
temporary store; the process tree's resident memory is sampled every 0.2 s. The table gives wall
time, articles per second (of the corpus, all epochs), peak resident memory and the size of the
logged model folder, for the streaming mode at every size and the in-memory mode up to a limit.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

SENTENCES_PER_ARTICLE = 4
_SAMPLE_SECONDS = 0.2


def build_corpus(cep_file: Path, n_articles: int, target: Path, seed: int = 13) -> Path:
    """``n_articles`` synthetic articles of CEP sentences as JSON Lines at ``target``, written as they are drawn."""
    with open(cep_file, encoding="utf-8") as handle:
        items = [json.loads(line) for line in handle]
    rng = random.Random(seed)
    with open(target, "w", encoding="utf-8") as out:
        for number in range(n_articles):
            chosen = rng.sample(items, SENTENCES_PER_ARTICLE)
            first = chosen[0]
            row = {
                "id": f"synthetic-{number}",
                "text": " ".join(item["text"] for item in chosen),
                "topic": first["label"],
                "tone": first.get("tone") or None,
                "date": first["date"],
            }
            out.write(json.dumps(row) + "\n")
    return target


def experiment_file(folder: Path, corpus: Path, mode: str, epochs: int, batch_size: int) -> Path:
    """streaming.toml's features and classifiers on ``corpus`` with a random split, in ``mode``."""
    from newsclf.train.config import load_config, to_dict

    raw = to_dict(load_config("streaming"))
    raw.pop("name")
    raw["data"] = {"source": str(corpus)}
    raw["split"] = {"mode": "stratified"}
    raw["fit"] |= {"mode": mode, "epochs": epochs, "batch_size": batch_size}
    raw["tracking"] = {"experiment": f"scale-{mode}", "registered_model": f"scale-{mode}"}
    if mode == "in_memory":
        raw.pop("fit")
    path = folder / f"scale-{mode}.toml"
    path.write_text(_toml(raw), encoding="utf-8")
    return path


def _toml(raw: dict, prefix: str = "") -> str:
    """A plain nested mapping (strings, numbers, booleans, lists) as TOML."""
    scalars = {key: value for key, value in raw.items() if not isinstance(value, dict)}
    lines = [f"{key} = {json.dumps(value)}" for key, value in scalars.items()]
    text = "\n".join(lines) + "\n"
    for key, value in raw.items():
        if isinstance(value, dict):
            name = f"{prefix}{key}"
            text += f"\n[{name}]\n" + _toml(value, f"{name}.")
    return text


def run_training(experiment: Path, store: Path) -> dict[str, float]:
    """Train ``experiment`` in a child process; wall seconds, peak RSS of its process tree, model folder size."""
    command = [
        str(Path(sys.executable).parent / "newsclf"),
        "train",
        "--experiment",
        str(experiment),
        "--tracking-uri",
        f"sqlite:///{store}/mlflow.db",
        "--quiet",
    ]
    start, cpu_before = time.perf_counter(), _children_cpu_seconds()
    # datasets' Arrow cache of the corpus goes beside it, into the temporary folder, not ~/.cache.
    environment = os.environ | {"HF_DATASETS_CACHE": str(store / "hf-cache")}
    process = subprocess.Popen(
        command, cwd=store, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    peak = [0, 0]

    def watch() -> None:
        while process.poll() is None:
            peak[:] = map(max, peak, _tree_rss(process.pid))
            time.sleep(_SAMPLE_SECONDS)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - start
    watcher.join()
    cpu_seconds = _children_cpu_seconds() - cpu_before
    if process.returncode != 0:
        raise RuntimeError(f"training failed ({process.returncode}): {err.strip().splitlines()[-1:]}")
    folders = list(store.glob("**/artifacts/newsclf_model"))
    size = sum(path.stat().st_size for folder in folders for path in folder.rglob("*") if path.is_file())
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_bytes": peak[0],
        "peak_anonymous_bytes": peak[1],
        "artifact_bytes": size,
        "output": out.strip(),
    }


def _children_cpu_seconds() -> float:
    """User + system CPU time of the finished child processes (on a shared machine, steadier than wall time)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc): all of it, and the anonymous part
    (RSS also counts the pages of the memory-mapped Arrow data read so far, which the kernel can drop)."""
    totals = [0, 0]
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{current}/status").read_text().splitlines() if ":" in line
            )
            for index, key in enumerate(("VmRSS", "RssAnon")):
                totals[index] += int(fields.get(key, "0 kB").split()[0]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return totals[0], totals[1]


def scale_benchmark(
    cep_file: Path,
    sizes: list[int],
    in_memory_up_to: int,
    epochs: int,
    batch_size: int,
    progress: Callable[[str], None],
    written: Callable[[list[dict]], None] = lambda results: None,
) -> list[dict]:
    """One row per (size, mode): the measurements of :func:`run_training`; ``written`` gets the rows so
    far after each one (so a long benchmark stopped part-way keeps what it measured)."""
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="newsclf-scale-") as tmp:
            folder = Path(tmp)
            progress(f"building {size:,} articles")
            corpus = build_corpus(cep_file, size, folder / "articles.jsonl")
            modes = ["streaming"] + (["in_memory"] if size <= in_memory_up_to else [])
            for mode in modes:
                store = folder / f"store-{mode}"
                store.mkdir()
                progress(f"training {mode} on {size:,} articles")
                measured = run_training(experiment_file(folder, corpus, mode, epochs, batch_size), store)
                row = {"articles": size, "mode": mode} | measured
                gigabytes = measured["peak_rss_bytes"] / 2**30
                progress(f"{mode} {size:,}: {measured['seconds']:.0f} s, peak RSS {gigabytes:.2f} GB")
                results.append(row)
                written(results)
    return results


def markdown(results: list[dict], epochs: int, batch_size: int) -> str:
    """The results as bench/scale.md."""
    lines = [
        "# Training beyond memory: streaming vs in-memory on synthetic CEP corpora",
        "",
        f"`make bench-scale`: articles of {SENTENCES_PER_ARTICLE} random CEP sentences (~75 words), "
        "experiments/streaming.toml's features, classifiers and calibration with a stratified 70/15/15 split, "
        f"up to {epochs} epochs, "
        f"batch_size {batch_size}; one `newsclf train` process per row on a 2-core machine shared with other work. "
        "CPU time is the training process's user + system time (steadier than wall time on a shared machine). "
        "Peak RSS is the whole process tree's, sampled every 0.2 s; the artifact is the logged model folder.",
        "",
        "| articles | mode | wall | CPU | articles/s (wall) | peak RSS | of it anonymous | artifact | scores |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in results:
        lines.append(
            f"| {row['articles']:,} | {row['mode']} | {row['seconds'] / 60:.1f} min | "
            f"{row['cpu_seconds'] / 60:.1f} min | "
            f"{row['articles'] / row['seconds']:,.0f} | {row['peak_rss_bytes'] / 2**30:.2f} GB | "
            f"{row['peak_anonymous_bytes'] / 2**30:.2f} GB | "
            f"{row['artifact_bytes'] / 2**20:.0f} MB | {' '.join(row['output'].splitlines()[:2])} |"
        )
    return "\n".join(lines) + "\n"
