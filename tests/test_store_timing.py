"""`EpisodeStore.on_write`: the public timing hook benchmarks use instead of patching internals."""

import numpy as np
import pytest

from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording.store import EpisodeStore, indexed_shard_lengths, read_index
from tests.fakes.episodes import SCHEMA, make_episode


def test_on_write_reports_every_durable_episode_with_its_phases(tmp_path):
    timings = []
    with EpisodeStore.open(str(tmp_path / "rec"), SCHEMA, on_write=timings.append) as store:
        for i in range(3):
            store.write_episode(make_episode(i, length=4 + i))
    assert [t.episode_id for t in timings] == [make_episode(i)[sc.EPISODE_ID] for i in range(3)]
    _, num_bytes = indexed_shard_lengths(read_index(str(tmp_path / "rec")))
    assert sum(t.num_bytes for t in timings) == num_bytes  # the index counts the same records
    for t in timings:
        assert min(t.serialize_s, t.write_s, t.index_s) >= 0
        assert t.total_s == pytest.approx(t.serialize_s + t.write_s + t.index_s)


def test_the_hook_is_settable_and_silent_for_a_refused_episode(tmp_path):
    timings = []
    with EpisodeStore.open(str(tmp_path / "rec"), SCHEMA) as store:
        store.write_episode(make_episode(0))  # no hook yet: nothing to call
        store.on_write = timings.append
        bad = make_episode(1)
        bad[sc.STEPS][sc.OBSERVATION] = np.zeros((6, 7), np.float32)  # wrong width
        with pytest.raises(errors.SchemaError):
            store.write_episode(bad)
        store.write_episode(make_episode(2))
    assert [t.episode_id for t in timings] == [make_episode(2)[sc.EPISODE_ID]]
