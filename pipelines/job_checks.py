"""`rlif-data check` inside every job: per-episode checks on the workers, the rest in the driver.

Reading the output back with `rlif_data.checks.check_dataset` would run in
the driver, one process, after the workers are done: on the 1M-step
benchmark it took 0.22-0.34x as long as the job itself, three quarters of
it decoding what the workers had just encoded, and on a 1.7 TB corpus it
would be hours of one core after the cluster finished (docs/scaling.md). So
the check is split where the data already is:

* `EpisodeChecker`, called by the sink on each worker where it serialises
  episodes (its Encode step, or WriteShards for sources read by key), runs
  `checks.check_episode` on the episode it is about to serialise (the
  episode is decoded there anyway) and keeps what the dataset-level checks
  need: length, terminal flag, id, fingerprint, env id, time limit and the
  report's notes about that env (bounds not checked, and why). That
  *summary* (a few hundred bytes) travels with the record to its shard's
  note;
* `dataset_report`, in the driver, puts the summaries in output order and
  runs the dataset-level checks (`duplicate_findings`, `truncation_findings`)
  on them: the same `checks.Report` that `check_dataset` gives for the
  written dataset (tests hold the two equal), built from the notes alone.

Deadlines are not checked (the control rate is not stored with the data),
as ``rlif-data check`` without ``--control-hz``.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rlif_data import checks
from rlif_data import schema as sc

# Keys of an episode summary (JSON in the shard notes).
KEY, LENGTH, TERMINAL, EPISODE_ID, FINGERPRINT = "key", "length", "terminal", "id", "fingerprint"
ENV_ID, TIME_LIMIT, FINDINGS, SECONDS = "env_id", "time_limit", "findings", "seconds"
ENV_NOTES = "env_notes"
NO_VIEW_NOTE = ("raw or ingested data (no relabel view): rewards are the environment's, RLIF "
                "rewards not checked")
NO_RATE_NOTE = "control deadlines not checked: give the control rate (--control-hz)"


class EpisodeChecker:
    """Per-episode checks of a job's output, where the episode is (a worker's Encode step).

    Args:
      view: the output's relabel view (`rlif_data.lineage.view_of_job`), None
        for raw or ingested data.
    """

    def __init__(self, view: Optional[str]):
        self._view = view
        self._envs: dict = {}
        # Per env id, looked up once: the check context (bounds), the time limit
        # and the notes `checks.env_info` gives (they travel in the summaries, so
        # the driver never makes an env, a MuJoCo import, itself).
        self._per_env: dict[str, tuple[checks.CheckContext, Optional[int], list[str]]] = {}

    def _env(self, env_id: str) -> tuple[checks.CheckContext, Optional[int], list[str]]:
        """(check context, time limit, notes) of an env id, looked up the first time it is seen."""
        entry = self._per_env.get(env_id)
        if entry is None:
            notes: list[str] = []
            low, high, limit = checks.env_info(env_id, self._envs, notes)
            entry = self._per_env[env_id] = (checks.CheckContext(self._view, low, high),
                                             None if limit is None else int(limit), notes)
        return entry

    def __call__(self, key: int, episode: Mapping[str, Any]) -> dict[str, Any]:
        """The summary of one episode: its findings and what the dataset-level checks need."""
        t0 = time.perf_counter()
        env_id = str(episode.get(sc.ENV_ID, ""))
        context, limit, notes = self._env(env_id)
        findings = checks.check_episode(episode, 0, context)
        steps = episode[sc.STEPS]
        return {KEY: int(key), LENGTH: len(steps[sc.IS_FIRST]) - 1,
                TERMINAL: bool(np.asarray(steps[sc.IS_TERMINAL])[-1]),
                EPISODE_ID: str(episode.get(sc.EPISODE_ID, "")),
                FINGERPRINT: checks.episode_fingerprint(episode), ENV_ID: env_id,
                TIME_LIMIT: limit, ENV_NOTES: list(notes),
                FINDINGS: [f.to_json() for f in findings],
                SECONDS: time.perf_counter() - t0}


def dataset_report(summaries: Sequence[Mapping[str, Any]], dataset: str,
                   view: Optional[str]) -> checks.Report:
    """The check report of a job's output from its episodes' summaries. Pure but for env lookups.

    Args:
      summaries: one per episode written (any order; `EpisodeChecker`'s).
      dataset: the output path, for the report.
      view: the output's relabel view.

    Returns:
      What `checks.check_dataset(dataset)` reports once the output is
      written (without a control rate or time limit given).
    """
    ordered = sorted(summaries, key=lambda s: s[KEY])
    report = checks.Report(dataset=dataset, view=view)
    envs: dict = {}
    for index, summary in enumerate(ordered):
        # The notes, in episode order: an env's the first time it is seen.
        if summary[ENV_ID] not in envs:
            envs[summary[ENV_ID]] = None
            if ENV_NOTES in summary:
                report.notes.extend(summary[ENV_NOTES])
            else:  # a summary without them: look the env up here
                checks.env_info(summary[ENV_ID], {}, report.notes)
        report.findings += [checks.Finding(**{**f, "episode": index})
                            for f in summary[FINDINGS]]
    lengths = [int(s[LENGTH]) for s in ordered]
    terminal = [bool(s[TERMINAL]) for s in ordered]
    ids = [str(s[EPISODE_ID]) for s in ordered]
    limits = [s[TIME_LIMIT] for s in ordered]
    seen = checks.time_limits_seen(lengths, terminal)
    limits = [limit or (next(iter(seen)) if seen else None) for limit in limits]
    report.findings += checks.truncation_findings(lengths, terminal, limits, ids)
    report.findings += checks.duplicate_findings([s[FINGERPRINT] for s in ordered], ids)
    report.findings.sort(key=lambda f: (f.episode, -1 if f.step is None else f.step))
    report.episodes = len(ordered)
    report.steps = int(sum(lengths))
    if view is None:
        report.notes.append(NO_VIEW_NOTE)
    if any(n > 1 for n in lengths):
        report.notes.append(NO_RATE_NOTE)
    return report


def worker_seconds(summaries: Sequence[Mapping[str, Any]]) -> float:
    """Seconds the workers spent checking, summed over episodes. Pure."""
    return float(sum(s[SECONDS] for s in summaries))
