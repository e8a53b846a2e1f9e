"""`trainers.train` end to end on real recordings: resume, refusals, export, publish, lineage.

The data are real: pushed-pendulum episodes recorded through envlogger with an
LQR expert intervening, relabelled by the Beam job, published in a registry.
Learners are tiny so each run costs seconds; what is asserted is behaviour
(exact resume, refusals, what loads where), not learning.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines import relabel
from rlif_cli.main import app
from rlif_data.recording.sim import RecordConfig, record_from_config
from rlif_data.registry.store import Registry
from trainers import run_dir
from trainers.configs import BCConfig, RLPDConfig
from trainers.run_dir import TrainingError
from trainers.train import TrainConfig, train

ENV = "InvertedPendulumPushed-v5"
SINGLE = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
TINY_RLPD = RLPDConfig(hidden_dims=(16, 16), num_qs=2, utd_ratio=2, batch_size=16).to_json_dict()
TINY_BC = BCConfig(hidden_dims=(16, 16), batch_size=16).to_json_dict()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A registry with a raw pendulum round and its paper and dagger views."""
    base = tmp_path_factory.mktemp("train")
    rec = str(base / "rec")
    record_from_config(RecordConfig(env_id=ENV, out=rec, episodes=4, expert="lqr",
                                    learner="random", rate=0.5, max_episode_steps=40,
                                    seed=3), progress=False)
    registry = Registry(str(base / "registry"))
    registry.publish(rec, "pend-raw")
    for view in ("paper", "dagger"):
        out = relabel.run(rec, str(base / view), view, SINGLE)
        registry.publish(out, f"pend-{view}")
    return {"root": registry.root, "base": base, "rec": rec}


def _config(data, out, **kw):
    defaults = dict(algo="rlpd", dataset=("pend-paper@latest",), out=str(out), steps=6,
                    log_every=2, checkpoint_every=3, eval_episodes=1, max_episode_steps=20,
                    root=data["root"], agent=TINY_RLPD)
    defaults.update(kw)
    return TrainConfig(**defaults)


def _final_state(out, like):
    run = run_dir.RunDirectory(str(out))
    try:
        return run.restore(run.latest_step(), like)
    finally:
        run.close()


def _leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_rlpd_stopped_and_resumed_ends_where_an_uninterrupted_run_ends(data, tmp_path):
    from trainers.agents.rlpd import RLPDLearner

    straight = train(_config(data, tmp_path / "straight"), progress=False)
    first = train(_config(data, tmp_path / "resumed", steps=3), progress=False)
    assert first.steps == 3 and first.resumed_from is None
    second = train(_config(data, tmp_path / "resumed"), progress=False)
    assert second.resumed_from == 3 and second.steps == straight.steps == 6
    like = RLPDLearner.create(0, 4, 1, RLPDConfig.from_json_dict(TINY_RLPD))
    a = _leaves(_final_state(tmp_path / "straight", like))
    b = _leaves(_final_state(tmp_path / "resumed", like))
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    # Each logged step appears once (3 was the first run's last step and checkpoint).
    steps = [json.loads(line)["step"] for line in
             open(tmp_path / "resumed" / run_dir.METRICS_FILE) if "critic_loss" in line]
    assert steps == [2, 3, 4, 6]
    assert (tmp_path / "resumed" / run_dir.CURVE_FILE).stat().st_size > 0
    assert os.listdir(tmp_path / "resumed" / "tensorboard")


def test_a_directory_holding_another_run_or_other_files_is_refused(data, tmp_path):
    train(_config(data, tmp_path / "run", steps=2), progress=False)
    with pytest.raises(TrainingError, match="another config .*seed"):
        train(_config(data, tmp_path / "run", steps=2, seed=7), progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="not a training run"):
        train(_config(data, tmp_path / "other", steps=2), progress=False)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_warm_start_from_a_run_of_another_network_is_refused(data, tmp_path):
    train(_config(data, tmp_path / "small", steps=2), progress=False)
    bigger = {**TINY_RLPD, "hidden_dims": [32, 32]}
    with pytest.raises(TrainingError, match="does not match this learner"):
        train(_config(data, tmp_path / "big", steps=2, agent=bigger,
                      init_from=str(tmp_path / "small")), progress=False)


def test_exported_policy_and_critic_load_without_trainer_code(data, tmp_path):
    result = train(_config(data, tmp_path / "run", steps=2), progress=False)
    script = f"""
import sys, numpy as np, gymnasium
from rlif_data.policies import from_spec
from rlif_data.policies.critic import load_q_function
import rlif_data.envs
space = gymnasium.spaces.Box(-3.0, 3.0, (1,), np.float32)
policy = from_spec({str(tmp_path / 'run')!r}, space, env_id={ENV!r}, seed=0)
obs = np.linspace(-0.1, 0.1, 4).astype(np.float32)
q = load_q_function({str(tmp_path / 'run')!r})
print(float(policy(obs)[0]), q(obs, policy(obs)), any(m.startswith('trainers') for m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    action, q_value, imported_trainers = float(out[0]), float(out[1]), out[2]
    assert imported_trainers == "False"
    assert -3.0 <= action <= 3.0 and np.isfinite(q_value)
    # The exported policy is the actor's deterministic action, rescaled to the env's bounds.
    from trainers.agents.rlpd import RLPDLearner

    like = RLPDLearner.create(0, 4, 1, RLPDConfig.from_json_dict(TINY_RLPD))
    agent = _final_state(tmp_path / "run", like)
    obs = np.linspace(-0.1, 0.1, 4).astype(np.float32)
    assert np.isclose(3.0 * float(np.asarray(agent.eval_actions(obs))[0]), action, atol=1e-4)
    assert result.policy_dir == str(tmp_path / "run" / run_dir.POLICY_DIR)


def test_dagger_refuses_a_view_without_expert_labels(data, tmp_path):
    with pytest.raises(TrainingError, match="relabel --view dagger"):
        train(_config(data, tmp_path / "d", algo="dagger", agent=TINY_BC), progress=False)
    result = train(_config(data, tmp_path / "ok", algo="dagger", agent=TINY_BC,
                           dataset=("pend-dagger@latest",)), progress=False)
    assert result.sources[0]["view"] == "dagger"


def test_hg_dagger_imitates_exactly_the_expert_controlled_steps(data, tmp_path):
    from rlif_data import schema as sc
    from rlif_data.recording.reader import read_episodes

    expected = sum(int(np.asarray(e[sc.STEPS][sc.INTERVENTION], bool)[:-1].sum())
                   for e in read_episodes(data["rec"]))
    result = train(_config(data, tmp_path / "hg", algo="hg-dagger", agent=TINY_BC,
                           dataset=("pend-raw@latest",)), progress=False)
    assert 0 < expected == result.sources[0]["imitated_rows"]


def test_policy_publish_lineage_and_record_with_a_policy_ref(data, tmp_path, monkeypatch):
    from trainers.artifacts import publish_policy

    result = train(_config(data, tmp_path / "run", steps=2), progress=False)
    info = publish_policy(result, "pend-policy", root=data["root"])
    registry = Registry(data["root"])
    assert registry.info("pend-policy@latest").manifest["kind"] == "policy"
    monkeypatch.setenv("RLIF_DATA_ROOT", data["root"])
    rec = str(tmp_path / "round-1")
    record_from_config(RecordConfig(env_id=ENV, out=rec, episodes=1, expert="lqr",
                                    learner="pend-policy@latest", max_episode_steps=10),
                       progress=False)
    from rlif_data import schema as sc
    from rlif_data.recording.reader import read_episodes

    assert read_episodes(rec)[0][sc.POLICY_VERSION] == info.ref  # the version, not the tag
    registry.publish(rec, "pend-raw", lineage={"inputs": [{"ref": info.ref}]})
    tree = registry.lineage("pend-raw@latest")
    policy_node = tree["inputs"][-1]
    assert policy_node["ref"] == info.ref and policy_node["job"] == "train"
    assert [n["ref"] for n in policy_node["inputs"]] == [registry.info("pend-paper@latest").ref]


def test_cli_train_prints_one_summary_and_refuses_bad_input_with_exit_2(data, tmp_path):
    from typer.testing import CliRunner

    common = ["--root", data["root"], "--steps", "2", "--eval-episodes", "1",
              "--max-episode-steps", "10", "--hidden", "16,16", "--batch-size", "16",
              "--quiet"]
    ok = CliRunner().invoke(app, ["train", "--algo", "rlpd", "--dataset", "pend-paper@latest",
                                  "--out", str(tmp_path / "cli"), "--utd", "2", "--num-qs", "2",
                                  *common])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().startswith("trained rlpd for 2 updates")
    for args, words in (
            (["--algo", "sac", "--dataset", "pend-paper@latest"], "unknown algorithm"),
            (["--algo", "rlpd", "--dataset", "nope@latest"], "nope"),
            (["--algo", "bc", "--dataset", "pend-paper@latest", "--utd", "3"], "RLPD options"),
    ):
        bad = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path / "bad"), *common])
        assert bad.exit_code == 2, bad.output
        assert words in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad" / run_dir.CHECKPOINTS_DIR).exists()


def test_offline_source_of_another_observation_space_is_refused(data, tmp_path):
    from tests.fakes.episodes import make_episode, write_recording
    from trainers.data import SpecMismatchError

    other = write_recording(tmp_path / "other", [make_episode(i) for i in range(2)])
    with pytest.raises(SpecMismatchError, match="use data of one environment"):
        train(_config(data, tmp_path / "run", offline=(other,), offline_reward="zero"),
              progress=False)
    assert not (tmp_path / "run" / run_dir.CHECKPOINTS_DIR).exists()


def test_record_with_value_based_intervention_from_a_run_critic(data, tmp_path):
    from typer.testing import CliRunner

    from rlif_data import schema as sc
    from rlif_data.recording.reader import read_episodes

    train(_config(data, tmp_path / "ref", steps=2), progress=False)
    out = tmp_path / "rec"
    result = CliRunner().invoke(app, [
        "record", "--env", ENV, "--out", str(out), "--episodes", "2", "--expert", "lqr",
        "--learner", "random", "--intervention", "value", "--qref", str(tmp_path / "ref"),
        "--alpha", "0.9", "--beta", "0.95", "--max-episode-steps", "15", "--quiet"])
    assert result.exit_code == 0, result.output
    episode = read_episodes(str(out))[0]
    params = json.loads(episode[sc.INTERVENTION_PARAMS])
    assert episode[sc.INTERVENTION_MODEL] == "value"
    assert params["alpha"] == 0.9 and params["beta"] == 0.95 and params["takeover_steps"] == 1
    missing = CliRunner().invoke(app, ["record", "--env", ENV, "--out", str(tmp_path / "x"),
                                       "--intervention", "value", "--quiet"])
    assert missing.exit_code == 2 and "needs --qref" in missing.output


def test_cli_train_on_marked_episodes_needs_the_option_then_drops_them(data, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from rlif_data import invalid

    rec = str(tmp_path / "rec")
    shutil.copytree(data["rec"], rec)
    first = invalid.episode_ids(rec)[0]
    invalid.mark_episode(rec, first, "operator bumped the table")
    common = ["--algo", "bc", "--dataset", rec, "--root", data["root"], "--steps", "2",
              "--eval-episodes", "1", "--max-episode-steps", "10", "--hidden", "16,16",
              "--batch-size", "16", "--quiet"]
    refused = CliRunner().invoke(app, ["train", *common, "--out", str(tmp_path / "a")])
    assert refused.exit_code == 2, refused.output
    assert "1 episode marked invalid; pass --invalid_episodes=drop" in " ".join(
        refused.output.split())
    ok = CliRunner().invoke(app, ["train", *common, "--out", str(tmp_path / "b"),
                                  "--invalid-episodes", "drop"])
    assert ok.exit_code == 0, ok.output
    saved = json.loads((tmp_path / "b" / "train_config.json").read_text())
    assert saved["invalid_episodes"] == "drop"
