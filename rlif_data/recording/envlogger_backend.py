"""An envlogger backend that commits every episode durably, off the control step.

Rollouts are recorded through `envlogger.EnvLogger`; this backend receives
its steps and hands each finished episode to an `EpisodeStore`. envlogger
pairs custom step data with the timestep it was produced at; we pair it with
the *action* it was recorded with (the `step_fn` sees the action that was just
applied), so `intervention` at step t describes who chose `action` at step t.

The commit (assembling the episode's arrays, encoding them, the shard write,
fsync, rename and index) takes 30-400 ms with two cameras. Done inline it
would land in the episode's last control step (envlogger records the LAST
timestep inside `env.step`), so it runs on a writer thread instead. Crash
safety keeps its bound: the next episode's first timestep (the reset) is
not recorded before the previous episode is durable, so at most one episode
is ever not on disk, as when the commit ran inline: a kill loses at most the
episode in flight, where "in flight" lasts until the next reset (or `flush`,
or `close`). The commit overlaps with that reset (on a robot, the arm moving
home). A failed commit raises at that barrier, naming the episode; the
episodes written before are intact.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from envlogger import step_data
from envlogger.backends import backend_writer

from rlif_data import episodes
from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.faults import checkpoint
from rlif_data.recording.store import EpisodeStore


class StoreBackend(backend_writer.BackendWriter):
    """envlogger `BackendWriter` over an `EpisodeStore`.

    The episode is handed to the writer when its LAST timestep arrives, not
    at the next reset, and is durable before the next episode's first
    timestep is recorded. An episode interrupted by a reset (or by `close`)
    before its LAST step is written as ended without termination
    (truncated). Episode metadata must be set before the last step (the
    recorder sets it right after reset).

    Args:
      store: where episodes go; only the writer touches it while a commit is pending.
      background: commit on a writer thread (one at a time); False commits
        inside the call that records the LAST timestep.
      **base_kwargs: envlogger's `metadata`/`scheduler` arguments.
    """

    def __init__(self, store: EpisodeStore, background: bool = True, **base_kwargs):
        super().__init__(**base_kwargs)
        self._store = store
        self._background = background
        self._steps: list[step_data.StepData] = []
        self._metadata: dict[str, Any] = {}
        self._episode_index = store.num_episodes
        self._writer: Optional[threading.Thread] = None
        self._failure: Optional[BaseException] = None
        self.handed_off = 0
        self.written: list[str] = []

    @property
    def store(self) -> EpisodeStore:
        """The underlying episode store."""
        return self._store

    def _where(self, step: int) -> str:
        eid = self._metadata.get(sc.EPISODE_ID) or f"#{self._episode_index}"
        return f"{self._store.directory}: episode {eid} step {step}"

    def _record_step(self, data: step_data.StepData, is_new_episode: bool) -> None:
        if is_new_episode:
            if self._steps:
                self._commit(terminated=False)
            # The crash-safety barrier: no step of this episode is recorded before
            # the previous one is durable.
            self.flush()
        where = self._where(len(self._steps))
        episodes.check_observation(data.timestep.observation, self._store.schema, where)
        if data.action is not None:
            episodes.check_action(data.action, self._store.schema.action_dim, where)
        self._steps.append(data)
        if data.timestep.last():
            self._commit(terminated=float(data.timestep.discount) == 0.0)

    def set_episode_metadata(self, data: Any) -> None:
        """Set (merge) the current episode's metadata; see `schema.EPISODE_METADATA_FIELDS`."""
        if not isinstance(data, dict):
            raise errors.SchemaError(f"episode metadata must be a dict, got {type(data).__name__}")
        self._metadata.update(data)

    def discard_episode(self) -> None:
        """Drop the episode in flight (e.g. after a policy error); nothing is written.

        An episode already handed to the writer is not affected.
        """
        self._steps = []
        self._metadata = {}

    def flush(self) -> None:
        """Wait until every finished episode is durable.

        Raises:
          SchemaError / RecordingError: the last commit failed (once); the
            episodes written before it are intact.
        """
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _commit(self, terminated: bool) -> None:
        steps, self._steps = self._steps, []
        metadata, self._metadata = self._metadata, {}
        if len(steps) < 2:
            return  # a reset with no action taken is not an episode
        self.flush()  # one commit at a time, in episode order
        index = self._episode_index
        self._episode_index += 1
        self.handed_off += 1
        if not self._background:
            self._write(steps, metadata, terminated, index)
            return
        # Not a daemon: an interpreter that exits normally waits for the episode.
        self._writer = threading.Thread(target=self._write_in_thread,
                                        args=(steps, metadata, terminated, index),
                                        name="episode-writer")
        self._writer.start()

    def _write_in_thread(self, steps, metadata, terminated: bool, index: int) -> None:
        try:
            checkpoint("writer.episode_taken")
            self._write(steps, metadata, terminated, index)
        except BaseException as exc:  # handed to the control thread at its next barrier
            self._failure = exc

    def _write(self, steps: list[step_data.StepData], metadata: dict[str, Any],
               terminated: bool, index: int) -> None:
        transitions = steps[1:]
        infos = [s.custom_data if isinstance(s.custom_data, episodes.StepInfo) else None
                 for s in transitions]
        where = f"{self._store.directory}: episode #{index}"
        episode = episodes.complete_metadata(metadata, where)
        episode[sc.STEPS] = episodes.assemble_steps(
            self._store.schema,
            observations=[s.timestep.observation for s in steps],
            actions=[s.action for s in transitions],
            rewards=[s.timestep.reward for s in transitions],
            discounts=[s.timestep.discount for s in transitions],
            infos=infos,
            terminated=terminated,
        )
        self.written.append(self._store.write_episode(episode))

    def close(self) -> None:
        """Write an unfinished episode (as truncated), wait for the writer, release the store.

        Raises:
          SchemaError / RecordingError: a commit failed (the store is released anyway).
        """
        if getattr(self, "_store", None) is None:
            return  # __del__ after a failed __init__, or closed twice
        try:
            if self._steps:
                self._commit(terminated=False)
            self.flush()
        finally:
            if self._writer is not None:  # _commit raised the previous failure
                self._writer.join()
            self._store.close()
            self._store = None
