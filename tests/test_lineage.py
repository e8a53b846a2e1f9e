"""The lineage contract: job records written by jobs and read by the registry, old and new."""

import json
import os

import pytest

from pipelines import relabel
from rlif_data import lineage
from rlif_data.registry import remote
from rlif_data.registry.store import Registry, resolve_dataset, resolve_dataset_ref
from tests.fakes.episodes import make_episode, write_recording

SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
# A record as jobs wrote it before the contract had dataclasses (inputs by path only).
OLD_RECORD = {"job": "relabel", "params": {"view": "paper"},
              "inputs": [{"path": "/data/rec", "episodes": 20, "bytes": 1234}],
              "code_version": "rlif-data 0.1.0+gabc", "created": "2025-01-01T00:00:00+00:00"}


def test_an_old_record_reads_and_writes_back_unchanged():
    record = lineage.JobRecord.from_json(OLD_RECORD)
    assert record.job == "relabel" and record.params == {"view": "paper"}
    assert record.inputs[0].path == "/data/rec" and record.inputs[0].ref is None
    assert record.to_json() == OLD_RECORD
    assert lineage.view_of_job(record) == "paper"


def test_unknown_keys_of_inputs_and_records_are_kept():
    data = {"job": "ingest_human", "params": {}, "rounds": {"run_id": "r1"},
            "inputs": [{"kind": "demos", "path": "/d.npz"}, {"role": "prior", "ref": "a:1.0.0",
                                                               "content_sha256": "ff"}]}
    record = lineage.JobRecord.from_json(data)
    assert record.inputs[0].extra == {"kind": "demos"}
    assert record.inputs[1].ref == "a:1.0.0" and record.inputs[1].extra == {"role": "prior"}
    assert record.to_json() == data


@pytest.mark.parametrize("data", [None, [], "text", {"job": 3, "params": [1], "inputs": {}}])
def test_malformed_records_read_as_empty_ones(data):
    record = lineage.JobRecord.from_json(data)
    assert record.job is None and record.params == {} and record.inputs == ()
    assert lineage.view_of_job(record) is None


def test_writing_stamps_time_and_code_version_and_refuses_an_input_naming_nothing():
    block = lineage.JobRecord("relabel", {"view": "paper"},
                              [lineage.registry_input("raw:1.0.0", "ab" * 32, episodes=3)]).metadata()
    assert block["inputs"] == [{"ref": "raw:1.0.0", "content_sha256": "ab" * 32, "episodes": 3}]
    assert block["code_version"].startswith("rlif-data") and block["created"].endswith("+00:00")
    with pytest.raises(lineage.LineageError, match="neither a registry ref nor a path"):
        lineage.JobRecord("merge", {}, [{"episodes": 3}]).metadata()
    assert issubclass(lineage.LineageError, ValueError)


def test_path_inputs_are_absolute_and_split_known_keys_from_extra(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    item = lineage.path_input("file.h5", sha256="00", rows=7, episodes=2)
    assert item.path == str(tmp_path / "file.h5") and item.sha256 == "00"
    assert item.episodes == 2 and item.extra == {"rows": 7}


def test_lineage_of_joins_the_dataset_record_and_the_published_one():
    own = lineage.JobRecord.from_json(OLD_RECORD)
    published = {"inputs": [{"ref": "policy:1.0.0"}], "evaluation": {"return": 1.0}}
    joined = lineage.lineage_of(own, published, source="/src")
    assert joined.job == "relabel" and [i.path or i.ref for i in joined.inputs] == [
        "/data/rec", "policy:1.0.0"]
    # A policy: no dataset record, the published one names the job.
    policy = lineage.lineage_of(lineage.JobRecord(None), {"job": "train", "params": {"lr": 1},
                                                          "inputs": [{"ref": "d:1.0.0"}]})
    assert (policy.job, policy.params, [i.ref for i in policy.inputs]) == (
        "train", {"lr": 1}, ["d:1.0.0"])
    # A recording: nothing recorded, its one input is where it was published from.
    raw = lineage.lineage_of(lineage.JobRecord(None), {}, source="/rec")
    assert raw.job == lineage.RECORDING_JOB and [i.path for i in raw.inputs] == ["/rec"]


def test_read_record_tolerates_missing_and_broken_metadata(tmp_path):
    assert lineage.read_record(str(tmp_path)).job is None
    (tmp_path / "metadata.json").write_text("[1, 2]")
    assert lineage.read_record(str(tmp_path)).job is None
    (tmp_path / "metadata.json").write_text(json.dumps({"lineage": OLD_RECORD}))
    assert lineage.dataset_view(str(tmp_path)) == "paper"


@pytest.fixture
def alice(tmp_path, monkeypatch):
    reg = Registry(str(tmp_path / "alice"))
    monkeypatch.setenv("RLIF_DATA_ROOT", reg.root)  # jobs resolve refs in the default registry
    rec = write_recording(tmp_path / "rec", [make_episode(i, length=5) for i in range(4)])
    reg.publish(rec, "raw", tags=("latest", "round-0"))
    return reg


def test_resolve_dataset_ref_names_the_version_a_tag_pointed_at(alice, tmp_path):
    got = resolve_dataset_ref("raw@round-0")
    info = alice.info("raw:1.0.0")
    assert (got.path, got.ref, got.content_sha256) == (
        info.path, "raw:1.0.0", info.manifest["content_sha256"])
    assert resolve_dataset("raw@round-0") == got.path  # the old function: the path only
    plain = resolve_dataset_ref(str(tmp_path / "rec"))
    assert plain.ref is None and plain.as_input().path == str(tmp_path / "rec")


def test_a_job_on_a_registry_ref_records_it_and_lineage_survives_a_pull(alice, tmp_path):
    out = str(tmp_path / "paper")
    relabel.run("raw@latest", out, "paper", SINGLE)
    with open(os.path.join(out, "metadata.json")) as f:
        (item,) = json.load(f)["lineage"]["inputs"]
    assert item == {"ref": "raw:1.0.0", "episodes": 4, "bytes": item["bytes"],
                    "content_sha256": alice.info("raw").manifest["content_sha256"]}
    alice.publish(out, "rlif")
    # Bob pulls both versions into another root: no path of Alice's means anything there.
    url = str(tmp_path / "shared")
    for ref in ("raw:1.0.0", "rlif:1.0.0"):
        remote.push(alice, ref, url)
    bob = Registry(str(tmp_path / "bob"))
    remote.pull(bob, "raw:1.0.0", url)
    remote.pull(bob, "rlif:1.0.0", url)
    tree = bob.lineage("rlif:1.0.0")
    assert tree["job"] == "relabel" and tree["params"] == {"view": "paper"}
    (parent,) = tree["inputs"]
    assert parent["ref"] == "raw:1.0.0" and parent["job"] == "recording"
    assert parent["content_sha256"] == item["content_sha256"]


def test_the_registry_still_reads_old_records_with_paths_into_itself(alice, tmp_path):
    # Before refs were recorded, a job on a registry version stored its directory.
    out = str(tmp_path / "old")
    relabel.run(alice.path("raw"), out, "paper", SINGLE)
    meta_path = os.path.join(out, "metadata.json")
    with open(meta_path) as f:
        meta = json.load(f)
    assert meta["lineage"]["inputs"][0]["path"] == alice.path("raw")  # a path stays a path
    meta["lineage"].pop("code_version")  # old records may lack keys
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    alice.publish(out, "old-rlif")
    tree = alice.lineage("old-rlif")
    assert tree["code_version"] is None and tree["inputs"][0]["ref"] == "raw:1.0.0"
