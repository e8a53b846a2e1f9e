"""An envlogger backend that commits every episode durably the moment it ends.

Rollouts are recorded through `envlogger.EnvLogger`; this backend receives
its steps and hands each finished episode to an `EpisodeStore`. envlogger
pairs custom step data with the timestep it was produced at; we pair it with
the *action* it was recorded with (the `step_fn` sees the action that was just
applied), so `intervention` at step t describes who chose `action` at step t.
"""

from __future__ import annotations

from typing import Any

from envlogger import step_data
from envlogger.backends import backend_writer

from rlif_data import episodes
from rlif_data import errors
from rlif_data import schema as sc
from rlif_data.recording.store import EpisodeStore


class StoreBackend(backend_writer.BackendWriter):
    """envlogger `BackendWriter` over an `EpisodeStore`.

    The episode is written when its LAST timestep arrives, not at the next
    reset, so a process killed between episodes loses nothing. An episode
    interrupted by a reset (or by `close`) before its LAST step is written as
    ended without termination (truncated). Episode metadata must be set before
    the last step (the recorder sets it right after reset).

    Args:
      store: where episodes go.
      **base_kwargs: envlogger's `metadata`/`scheduler` arguments.
    """

    def __init__(self, store: EpisodeStore, **base_kwargs):
        super().__init__(**base_kwargs)
        self._store = store
        self._steps: list[step_data.StepData] = []
        self._metadata: dict[str, Any] = {}
        self._episode_index = store.num_episodes
        self.written: list[str] = []

    @property
    def store(self) -> EpisodeStore:
        """The underlying episode store."""
        return self._store

    def _where(self, step: int) -> str:
        eid = self._metadata.get(sc.EPISODE_ID) or f"#{self._episode_index}"
        return f"{self._store.directory}: episode {eid} step {step}"

    def _record_step(self, data: step_data.StepData, is_new_episode: bool) -> None:
        if is_new_episode and self._steps:
            self._commit(terminated=False)
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
        """Drop the episode in flight (e.g. after a policy error); nothing is written."""
        self._steps = []
        self._metadata = {}

    def _commit(self, terminated: bool) -> None:
        steps, self._steps = self._steps, []
        metadata, self._metadata = self._metadata, {}
        if len(steps) < 2:
            return  # a reset with no action taken is not an episode
        transitions = steps[1:]
        infos = [s.custom_data if isinstance(s.custom_data, episodes.StepInfo) else None
                 for s in transitions]
        where = f"{self._store.directory}: episode #{self._episode_index}"
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
        self._episode_index += 1

    def close(self) -> None:
        """Write an unfinished episode (as truncated) and release the store."""
        if getattr(self, "_store", None) is None:
            return  # __del__ after a failed __init__, or closed twice
        try:
            if self._steps:
                self._commit(terminated=False)
        finally:
            self._store.close()
            self._store = None
