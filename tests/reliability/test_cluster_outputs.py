"""Cluster scoring writes one output name per input, refusing inputs that would share one when the plan
is made (before, both partitions went to one file: 300 of 500 rows kept, 500 reported); and a local
cluster, its dashboard included, listens on this machine only (before: on every interface)."""

import pytest

from newsclf.errors import NewsclfError
from newsclf.train.jobs.score import plan_partitions
from tests.helpers import write_jsonl


def test_inputs_whose_output_names_collide_are_refused_naming_both(tmp_path):
    (tmp_path / "col" / "a").mkdir(parents=True)
    flat = write_jsonl(tmp_path / "col" / "a__b.jsonl", [{"text": "x"}])
    nested = write_jsonl(tmp_path / "col" / "a" / "b.jsonl", [{"text": "y"}])
    with pytest.raises(NewsclfError, match=r"a__b\.jsonl and .*a/b\.jsonl would both be written as a__b\.jsonl"):
        plan_partitions([str(flat), str(nested)])


def test_inputs_in_folders_get_names_of_their_own(tmp_path):
    (tmp_path / "2024").mkdir()
    (tmp_path / "2025").mkdir()
    files = [str(write_jsonl(tmp_path / year / "news.jsonl", [{"text": "x"}])) for year in ("2024", "2025")]
    assert [partition.output for partition in plan_partitions(files)] == [
        "2024__news.jsonl.part-00000.parquet",
        "2025__news.jsonl.part-00000.parquet",
    ]


@pytest.mark.slow  # starts a local Dask cluster
def test_the_local_cluster_and_its_dashboard_listen_on_this_machine_only():
    from newsclf.train.cluster import LOCAL, connect

    with connect(LOCAL) as client:
        addresses = [client.scheduler.address, *client.scheduler_info()["workers"], client.dashboard_link]
    assert all("127.0.0.1" in address for address in addresses), addresses
