"""The RLIF rounds driver on real parts: resumable from the registry, refusing hand-made changes.

Rounds record the pushed pendulum through envlogger, relabel with Beam, train
a tiny RLPD learner and publish everything in a registry under tmp_path.
"""

import dataclasses

import numpy as np
import pytest

from rlif_data import schema as sc
from rlif_data.recording.reader import read_episodes
from rlif_data.registry.store import Registry
from trainers.configs import RLPDConfig
from trainers.rounds import RoundsConfig, RoundsDriver, RoundsError, format_table

ENV = "InvertedPendulumPushed-v5"
TINY = RLPDConfig(hidden_dims=(16, 16), num_qs=2, utd_ratio=2, batch_size=16).to_json_dict()


def _config(tmp_path, **kw):
    defaults = dict(name="pend", env_id=ENV, rounds=2, episodes=2, expert="lqr",
                    intervention="random", rate=0.5, steps=4, agent=TINY, max_episode_steps=30,
                    eval_episodes=1, seed=1, workdir=str(tmp_path / "work"),
                    root=str(tmp_path / "registry"))
    defaults.update(kw)
    return RoundsConfig(**defaults)


class Crash(Exception):
    """Stands in for a kill between two stages."""


def _versions(registry, name):
    return [str(v) for v in registry.versions(name)] if name in registry.names() else []


def test_rounds_publish_every_stage_and_a_rerun_adds_nothing(tmp_path):
    config = _config(tmp_path)
    rows = RoundsDriver(config, progress=False, log=lambda line: None).run()
    registry = Registry(config.root)
    for name in ("pend", "pend-raw", "pend-policy"):
        assert set(registry.tags(name)) >= {"round-0", "round-1", "latest"}
        assert _versions(registry, name) == ["1.0.0", "1.1.0"]
    # Each raw round names the policy that collected it, by immutable version.
    for k, row in enumerate(rows):
        episodes = read_episodes(registry.path(f"pend-raw@round-{k}"))
        assert {e[sc.POLICY_VERSION] for e in episodes} == {row.policy}
        assert {e[sc.ROUND] for e in episodes} == {k}
    # The round-1 dataset holds both rounds, in the paper view.
    merged = read_episodes(registry.path("pend@round-1"))
    assert len(merged) == 4 and all(sc.INCLUDE in e[sc.STEPS] for e in merged)
    assert rows[1].transitions == sum(len(e[sc.STEPS][sc.IS_FIRST]) - 1 for e in merged)
    flags = np.concatenate([e[sc.STEPS][sc.INTERVENTION][:-1] for e in merged])
    assert 0 < flags.mean() < 1
    assert "round" in format_table(rows) and (tmp_path / "work" / "rounds.png").exists()
    # Everything is published: running again records, trains and publishes nothing.
    again = RoundsDriver(config, progress=False, log=lambda line: None).run()
    assert [r.policy for r in again] == [r.policy for r in rows]
    for name in ("pend", "pend-raw", "pend-policy"):
        assert _versions(registry, name) == ["1.0.0", "1.1.0"]


def test_a_run_stopped_after_any_stage_continues_without_repeating_one(tmp_path):
    config = _config(tmp_path)
    registry = Registry(config.root)
    stages = ["published policy", "recorded", "published pend:"]
    for stop_after in stages:  # stop round 1 after each of its stages in turn

        def log(line, stop_after=stop_after):
            if line.startswith("round 1:") and stop_after in line:
                raise Crash(line)

        with pytest.raises(Crash):
            RoundsDriver(config, progress=False, log=log).run()
    rows = RoundsDriver(config, progress=False, log=lambda line: None).run()
    assert len(rows) == 2
    for name in ("pend", "pend-raw", "pend-policy"):
        assert _versions(registry, name) == ["1.0.0", "1.1.0"], name


def test_a_tag_moved_by_hand_stops_the_run(tmp_path):
    config = _config(tmp_path, rounds=1)
    RoundsDriver(config, progress=False, log=lambda line: None).run()
    registry = Registry(config.root)
    # Someone publishes other data and points round-0 at it.
    registry.publish(registry.path("pend-raw@round-0"), "pend", tags=("round-0",))
    with pytest.raises(RoundsError, match="changed by hand"):
        RoundsDriver(dataclasses.replace(config, rounds=2), progress=False,
                     log=lambda line: None).run()
    assert _versions(registry, "pend-policy") == ["1.0.0"]  # round 1 trained nothing


def test_value_based_rounds_load_q_ref_from_a_published_policy(tmp_path):
    # Q^ref: an RLPD critic trained on the first run's data, published as a policy.
    first = _config(tmp_path, rounds=2, name="ref")
    RoundsDriver(first, progress=False, log=lambda line: None).run()
    value = _config(tmp_path, rounds=1, name="vb", intervention="value",
                    qref="ref-policy@round-1", alpha=0.97, beta=0.95)
    rows = RoundsDriver(value, progress=False, log=lambda line: None).run()
    registry = Registry(value.root)
    episode = read_episodes(registry.path("vb-raw@round-0"))[0]
    assert episode[sc.INTERVENTION_MODEL] == "value"
    assert '"alpha": 0.97' in episode[sc.INTERVENTION_PARAMS]
    assert 0.0 <= rows[0].intervention_rate <= 1.0

    # The absolute trigger reaches the recorder: its params carry delta, not alpha.
    absolute = _config(tmp_path, rounds=1, name="vd", intervention="value",
                       qref="ref-policy@round-1", delta=0.1, beta=0.95)
    RoundsDriver(absolute, progress=False, log=lambda line: None).run()
    params = read_episodes(registry.path("vd-raw@round-0"))[0][sc.INTERVENTION_PARAMS]
    assert '"delta": 0.1' in params and '"alpha": null' in params


def test_run_id_ignores_an_unset_delta_so_older_runs_continue(tmp_path):
    import hashlib
    import json

    config = _config(tmp_path)
    data = dataclasses.asdict(config)
    for key in ("workdir", "root", "rounds", "delta"):
        data.pop(key)
    old = hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()[:16]
    assert config.run_id() == old
    assert _config(tmp_path, delta=0.1).run_id() != old
    with pytest.raises(ValueError, match="delta must be finite"):
        _config(tmp_path, delta=-1.0).validate()


def test_bad_rounds_configs_fail_with_one_line(tmp_path):
    with pytest.raises(ValueError, match="needs --qref"):
        _config(tmp_path, intervention="value").validate()
    with pytest.raises(ValueError, match="algo must be one of"):
        _config(tmp_path, algo="sac").validate()
