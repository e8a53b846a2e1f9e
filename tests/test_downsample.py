"""Pure episode selection for downsampling."""

import pytest

from rlif_data import downsample as ds


def infos(lengths, strata=None):
    strata = strata or [""] * len(lengths)
    return [ds.EpisodeInfo(i, n, s) for i, (n, s) in enumerate(zip(lengths, strata))]


def test_by_count_is_seeded_and_sorted():
    data = infos([10] * 50)
    a = ds.select_episodes(data, episodes=7, seed=3)
    assert a == ds.select_episodes(data, episodes=7, seed=3)
    assert a != ds.select_episodes(data, episodes=7, seed=4)
    assert len(a.indices) == 7 and list(a.indices) == sorted(a.indices)
    assert a.transitions == 70


def test_by_transitions_stays_within_budget_with_whole_episodes():
    data = infos([30, 5, 17, 40, 8, 12, 25, 3])
    sel = ds.select_episodes(data, transitions=50, seed=0)
    assert sel.transitions <= 50
    assert sel.transitions == sum(data[i].transitions for i in sel.indices)
    # First fit keeps going past an episode that does not fit.
    assert sel.transitions >= 50 - min(i.transitions for i in data)


def test_stratified_keeps_each_groups_share():
    data = infos([10] * 40, ["alice"] * 30 + ["bob"] * 10)
    sel = ds.select_episodes(data, episodes=8, seed=1, stratify=True)
    assert sel.per_stratum == {"alice": 6, "bob": 2}
    sel = ds.select_episodes(data, transitions=100, seed=1, stratify=True)
    # 75 / 25 of the 100 transitions; whole 10-step episodes fit 7 and 2 times.
    assert sel.per_stratum == {"alice": 7, "bob": 2}


@pytest.mark.parametrize("kwargs,message", [
    ({}, "exactly one"),
    ({"episodes": 1, "transitions": 5}, "exactly one"),
    ({"episodes": 0}, "positive"),
    ({"transitions": -3}, "positive"),
    ({"episodes": 11}, "only 10"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ds.select_episodes(infos([1] * 10), **kwargs)
