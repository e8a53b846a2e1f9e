"""Record rollouts where a learner acts and an expert takes over.

At every step the learner proposes an action, the expert's action is computed
(for DAgger labels and value-based models), the intervention model decides who
is in control, and the chosen action goes to the environment, which envlogger
wraps; `StoreBackend` writes each finished episode durably, on a writer thread
that the next episode's first step waits for (see its module).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import threading
import time
import uuid
from typing import Any, Callable, Optional

import dm_env
import numpy as np

from rlif_data import episodes, errors
from rlif_data import invalid
from rlif_data import schema as sc
from rlif_data.intervention import DecisionContext, InterventionModel
from rlif_data.recording.envlogger_backend import StoreBackend
from rlif_data.recording.store import EpisodeStore, WriteTiming
from rlif_data.version import code_version

log = logging.getLogger(__name__)
Policy = Callable[[Any], np.ndarray]
CURRENT = "current"
PREVIOUS = "previous"


class NoEpisodeToMarkError(errors.RlifDataError, ValueError):
    """`mark_invalid` named an episode that does not exist (none in flight, none ended yet)."""


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """Episode metadata shared by all episodes of a recording session.

    Attributes:
      env_id: environment id, e.g. "Hopper-v5".
      operator: expert id (simulation) or operator name (robot).
      round: RLIF round number.
      policy_version: checkpoint/version of the learner policy.
      seed: base seed; episode i uses ``seed + i``.
      session_id: unique id; generated when empty.
      expert_source: who the expert is (`Source.EXPERT` or `Source.HUMAN`).
      always_query_expert: compute the expert's action at every step, so that
        DAgger labels exist for every visited state.
    """

    env_id: str
    operator: str = "scripted-expert"
    round: int = 0
    policy_version: str = ""
    seed: int = 0
    session_id: str = ""
    expert_source: sc.Source = sc.Source.EXPERT
    always_query_expert: bool = True


@dataclasses.dataclass
class EpisodeResult:
    """Summary of one recorded episode."""

    episode_id: str
    transitions: int
    intervened_steps: int
    takeovers: int
    episode_return: float
    terminated: bool


@dataclasses.dataclass
class SessionSummary:
    """What a recording session wrote."""

    directory: str
    session_id: str
    episodes: list[EpisodeResult]
    total_episodes_in_directory: int
    seconds: float

    @property
    def transitions(self) -> int:
        """Total transitions recorded in this session."""
        return sum(e.transitions for e in self.episodes)

    @property
    def intervention_rate(self) -> float:
        """Fraction of this session's transitions under expert control."""
        n = self.transitions
        return sum(e.intervened_steps for e in self.episodes) / n if n else 0.0


class RolloutRecorder:
    """Runs episodes with interventions and records them through envlogger.

    Args:
      env: a dm_env environment (e.g. `GymnasiumDmEnv`).
      store: an open `EpisodeStore`; the recorder closes it on `close`.
      policy: the learner, ``policy(observation) -> action``.
      expert: the expert, same signature; may be None only for models that
        never intervene.
      model: the intervention model.
      session: episode metadata for this session.
      clock: monotonic clock (seconds), injectable for tests.
      pacer: paces a real-time loop: ``reset()`` at each episode start,
        ``wait()`` before each step (e.g. `robot.timing.ControlRate`).
      observer: called after every step with (episode id, step index,
        applied action, new timestep): session logs hook in here.
      background_commit: write finished episodes on the store's writer thread
        (`StoreBackend`); False writes each inside its last step.

    The operator marks the episode in flight or the one before it invalid
    with `mark_invalid` (`rlif_data.invalid`). A mark of an episode that is
    not durable yet is held and appended right after its commit (on the
    writer thread, through the store's `on_write` hook), so a kill before
    the commit loses the episode and its mark together.
    """

    def __init__(
        self,
        env: dm_env.Environment,
        store: EpisodeStore,
        policy: Policy,
        expert: Optional[Policy],
        model: InterventionModel,
        session: SessionInfo,
        clock: Callable[[], float] = time.monotonic,
        pacer: Optional[Any] = None,
        observer: Optional[Callable[[str, int, np.ndarray, Any], None]] = None,
        background_commit: bool = True,
    ):
        import envlogger

        self._schema = store.schema
        self._policy = policy
        self._expert = expert
        self._model = model
        self._session = dataclasses.replace(
            session, session_id=session.session_id or uuid.uuid4().hex[:12]
        )
        self._clock = clock
        self._pacer = pacer
        self._observer = observer
        self._pending: Optional[episodes.StepInfo] = None
        self._backend = StoreBackend(store, background=background_commit)
        self._env = envlogger.EnvLogger(env, step_fn=self._step_fn, backend=self._backend)
        self._episode_counter = store.num_episodes
        # Invalid marks: ids of this session's episodes, the marks made, those
        # waiting for their episode's commit; the lock orders the control
        # thread's marks against the writer thread's commits.
        self._marks_lock = threading.Lock()
        self._in_flight: Optional[str] = None
        self._previous: Optional[str] = None
        self._committed: set[str] = set()
        self._held: dict[str, invalid.Mark] = {}
        self._marked: dict[str, invalid.Mark] = {}
        self._chained_on_write = store.on_write
        store.on_write = self._on_write

    @property
    def session_id(self) -> str:
        """The session's id (generated if none was given)."""
        return self._session.session_id

    @property
    def directory(self) -> str:
        """The recording directory."""
        return self._backend.store.directory

    @property
    def marks(self) -> list[invalid.Mark]:
        """The marks made in this session (held or stored), in order."""
        with self._marks_lock:
            return list(self._marked.values())

    def mark_invalid(self, reason: str, which: str = CURRENT, how: str = invalid.HOW_API,
                     by: Optional[str] = None) -> invalid.Mark:
        """Mark the episode in flight, or the previous one, invalid (it stays in the data).

        Args:
          reason: why (non-empty, at most `invalid.MAX_REASON_CHARS` characters).
          which: "current": the episode being recorded; "previous": the last
            episode of this session that ended (the one before the current).
          how: how the operator marked it (`invalid.HOWS`).
          by: who (default: the session's operator).

        Returns:
          The mark. Stored now if its episode is durable, else held and
          stored right after the episode's commit.

        Raises:
          NoEpisodeToMarkError: "current" with no episode in flight, or
            "previous" before any episode of this session ended.
          AlreadyInvalidError: the episode is marked already (nothing changes).
          MarkError: an empty or too long reason, an unknown `how`.
          ValueError: `which` is neither "current" nor "previous".
          RecordingError: the marks file could not be written.
        """
        if which not in (CURRENT, PREVIOUS):
            raise ValueError(f"which must be {CURRENT!r} or {PREVIOUS!r}, got {which!r}")
        with self._marks_lock:
            episode_id = self._in_flight if which == CURRENT else self._previous
            if episode_id is None:
                raise NoEpisodeToMarkError(
                    f"{self.directory}: no episode is being recorded; mark the previous one"
                    if which == CURRENT else
                    f"{self.directory}: no episode of this session has ended yet; nothing to "
                    "mark as the previous one")
            first = self._marked.get(episode_id)
            if first is not None:
                raise invalid.already_invalid(self.directory, first)
            mark = invalid.new_mark(episode_id, reason, how, by or self._session.operator)
            self._marked[episode_id] = mark
            durable = episode_id in self._committed
            if not durable:
                self._held[episode_id] = mark
        if durable:
            try:
                self._store_mark(mark)
            except BaseException:
                with self._marks_lock:
                    self._marked.pop(episode_id, None)
                raise
        return mark

    def _store_mark(self, mark: invalid.Mark) -> None:
        try:
            invalid.append_mark(self.directory, mark)
        except OSError as exc:
            raise errors.RecordingError(
                f"{self.directory}: episode {mark.episode_id} is saved, but its invalid mark "
                f"could not be written ({errors.describe_os_error(exc)}); mark it again with "
                f"`rlif-data mark-invalid {self.directory} {mark.episode_id} --reason "
                f"{json.dumps(mark.reason)}`") from exc

    def _on_write(self, timing: WriteTiming) -> None:
        """The store's hook after each durable episode: store a mark held for it."""
        if self._chained_on_write is not None:
            self._chained_on_write(timing)
        with self._marks_lock:
            self._committed.add(timing.episode_id)
            mark = self._held.pop(timing.episode_id, None)
        if mark is None:
            return
        try:
            self._store_mark(mark)
        except invalid.AlreadyInvalidError as exc:
            # Marked meanwhile from elsewhere (`rlif-data mark-invalid`): it is
            # marked, which is what the operator asked; not worth ending the session.
            log.warning("%s", exc)

    def _step_fn(self, timestep, action, env) -> Optional[episodes.StepInfo]:
        # envlogger calls this right after `action` was applied: the pending
        # decision is the one that produced `action`.
        del timestep, env
        if action is None:
            return None
        info, self._pending = self._pending, None
        return info

    def _episode_metadata(self, index: int, seed: int) -> dict[str, Any]:
        s = self._session
        return {
            sc.EPISODE_ID: f"{s.session_id}/{index:05d}",
            sc.SESSION_ID: s.session_id,
            sc.OPERATOR: s.operator,
            sc.INTERVENTION_MODEL: self._model.name,
            sc.INTERVENTION_PARAMS: json.dumps(self._model.params(), sort_keys=True),
            sc.ROUND: s.round,
            sc.POLICY_VERSION: s.policy_version,
            sc.ENV_ID: s.env_id,
            sc.SEED: seed,
            sc.START_TIME: datetime.datetime.now(datetime.timezone.utc).isoformat(),
            sc.CODE_VERSION: code_version(),
        }

    def _choose(self, step: int, observation: Any, start: float, where: str) -> np.ndarray:
        a_dim = self._schema.action_dim
        policy_action = episodes.check_action(self._policy(observation), a_dim,
                                              f"{where}: policy action")
        expert_action = None
        if self._expert is not None and (
            self._session.always_query_expert or self._model.needs_expert_action
        ):
            expert_action = episodes.check_action(self._expert(observation), a_dim,
                                                  f"{where}: expert action")
        intervene = self._model.decide(
            DecisionContext(step, observation, policy_action, expert_action)
        )
        if intervene and expert_action is None:
            if self._expert is None:
                raise ValueError(f"{where}: the model intervened but no expert was given")
            expert_action = episodes.check_action(self._expert(observation), a_dim,
                                                  f"{where}: expert action")
        source = self._session.expert_source if intervene else sc.Source.POLICY
        action = expert_action if intervene else policy_action
        self._pending = episodes.StepInfo(
            intervention=bool(intervene),
            policy_action=policy_action,
            expert_action=expert_action,
            source=source,
            timestamp=self._clock() - start,
        )
        return action

    def run_episode(self) -> EpisodeResult:
        """Record one episode to its end and hand it to the store's writer.

        It is durable before the next episode's first step is recorded, or
        when `flush` or `close` returns; a kill before that loses it (and
        nothing else: one episode at most is ever not on disk).

        Raises:
          InvalidActionError / SchemaError: bad action or observation; the
            episode in flight is dropped, earlier episodes are intact.
          RecordingError / SchemaError: the previous episode could not be
            written (raised at this episode's reset); earlier ones are intact.
        """
        index = self._episode_counter
        seed = self._session.seed + index
        self._model.reset(seed=seed)
        for fn in (self._policy, self._expert):
            if hasattr(fn, "reset"):
                fn.reset(seed=seed)
        if self._pacer is not None:
            self._pacer.reset()
        start = self._clock()
        timestep = self._env.reset()
        metadata = self._episode_metadata(index, seed)
        self._backend.set_episode_metadata(metadata)
        handed_off_before = self._backend.handed_off
        with self._marks_lock:
            self._in_flight = metadata[sc.EPISODE_ID]
        step = 0
        intervened = takeovers = 0
        prev = False
        ret = 0.0
        try:
            while not timestep.last():
                where = f"{self._backend.store.directory}: episode {metadata[sc.EPISODE_ID]} step {step}"
                if self._pacer is not None:
                    self._pacer.wait()
                action = self._choose(step, timestep.observation, start, where)
                now = self._pending.intervention
                intervened += now
                takeovers += now and not prev
                prev = now
                timestep = self._env.step(action)
                if self._observer is not None:
                    self._observer(metadata[sc.EPISODE_ID], step, action, timestep)
                ret += float(timestep.reward)
                step += 1
        except BaseException:
            self._backend.discard_episode()
            with self._marks_lock:
                self._in_flight = None
                # An episode dropped before its hand-off is never written: neither is its mark.
                if (self._backend.handed_off == handed_off_before
                        and self._held.pop(metadata[sc.EPISODE_ID], None) is not None):
                    self._marked.pop(metadata[sc.EPISODE_ID], None)
            raise
        self._episode_counter += 1
        with self._marks_lock:
            self._in_flight, self._previous = None, metadata[sc.EPISODE_ID]
        if self._backend.handed_off == handed_off_before:
            raise RuntimeError(f"episode {metadata[sc.EPISODE_ID]} ended but was not written")
        return EpisodeResult(
            episode_id=metadata[sc.EPISODE_ID],
            transitions=step,
            intervened_steps=int(intervened),
            takeovers=int(takeovers),
            episode_return=ret,
            terminated=float(timestep.discount) == 0.0,
        )

    def flush(self) -> None:
        """Wait until every finished episode is durable.

        Raises:
          RecordingError / SchemaError: the last episode could not be written.
        """
        self._backend.flush()

    def close(self) -> None:
        """Close envlogger, the environment and the store (after the last episode is durable).

        Raises:
          RecordingError / SchemaError: the last episode could not be written.
        """
        self._env.close()


def record_session(
    env: dm_env.Environment,
    directory: str,
    schema: sc.EpisodeSchema,
    policy: Policy,
    expert: Optional[Policy],
    model: InterventionModel,
    session: SessionInfo,
    num_episodes: int,
    progress: bool = True,
) -> SessionSummary:
    """Record `num_episodes` episodes into `directory` (created or appended to).

    Args:
      env: dm_env environment whose observations match `schema`.
      directory: recording directory.
      schema: the episode schema.
      policy, expert, model, session: see `RolloutRecorder`.
      num_episodes: how many episodes to record.
      progress: show a progress bar.

    Returns:
      A `SessionSummary` of what was written.
    """
    from tqdm.auto import tqdm

    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    store = EpisodeStore.open(directory, schema, metadata={"env_id": session.env_id})
    t0 = time.monotonic()
    recorder = RolloutRecorder(env, store, policy, expert, model, session)
    results: list[EpisodeResult] = []
    try:
        with tqdm(total=num_episodes, desc="recording", unit="ep", disable=not progress) as bar:
            for _ in range(num_episodes):
                result = recorder.run_episode()
                results.append(result)
                bar.update(1)
                bar.set_postfix(steps=result.transitions,
                                interv=f"{result.intervened_steps / max(result.transitions, 1):.0%}")
        recorder.flush()
    finally:
        recorder.close()
    return SessionSummary(store.directory, recorder.session_id, results, store.num_episodes,
                          time.monotonic() - t0)
