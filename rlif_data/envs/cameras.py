"""Rendered MuJoCo camera frames as part of the observation.

Rendering is software (EGL/Mesa) on machines without a GPU: tens of ms per
128x128 frame, so rendered cameras fit a 10 Hz loop, not a 20 Hz one. The
recorder's cost is measured separately (benchmarks/record_overhead.py).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from dm_env import specs

from rlif_data import errors
from rlif_data.schema import STATE_KEY
from rlif_data.envs.gym_dm_env import GymnasiumDmEnv, make_gym_env

FREE_CAMERA = "free"  # MuJoCo's default free camera (id -1)


class MujocoCameras:
    """Observation function: ``{"state": obs, <camera>: HxWx3 uint8, ...}``.

    Args:
      cameras: camera names in the model's XML, or `FREE_CAMERA`.
      size: frame height and width in pixels.
    """

    def __init__(self, cameras: tuple[str, ...], size: int = 128):
        if not cameras:
            raise ValueError("give at least one camera")
        if STATE_KEY in cameras:
            raise ValueError(f"{STATE_KEY!r} is reserved for the proprio state")
        self.cameras = tuple(cameras)
        self.size = int(size)
        self._renderer = None
        self._ids: dict[str, int] = {}

    def _setup(self, env: Any) -> None:
        import mujoco

        model = env.unwrapped.model
        names = [model.camera(i).name for i in range(model.ncam)]
        for cam in self.cameras:
            if cam == FREE_CAMERA:
                self._ids[cam] = -1
            elif cam in names:
                self._ids[cam] = names.index(cam)
            else:
                raise errors.SchemaError(
                    f"camera {cam!r} is not in the model; available: {names + [FREE_CAMERA]}"
                )
        self._renderer = mujoco.Renderer(model, self.size, self.size)

    def __call__(self, obs: np.ndarray, env: Any) -> dict[str, np.ndarray]:
        if self._renderer is None:
            self._setup(env)
        data = env.unwrapped.data
        out = {STATE_KEY: np.asarray(obs, np.float32)}
        for cam, cam_id in self._ids.items():
            self._renderer.update_scene(data, camera=cam_id)
            out[cam] = self._renderer.render().copy()
        return out

    def observation_spec(self, state_dim: int) -> dict[str, specs.Array]:
        """dm_env spec of the observations this function returns."""
        spec = {STATE_KEY: specs.Array((state_dim,), np.float32, name=STATE_KEY)}
        for cam in self.cameras:
            spec[cam] = specs.Array((self.size, self.size, 3), np.uint8, name=cam)
        return spec


def make_camera_dm_env(env_id: str, cameras: tuple[str, ...], *, size: int = 128,
                       seed: Optional[int] = None,
                       max_episode_steps: Optional[int] = None) -> GymnasiumDmEnv:
    """A Gymnasium MuJoCo env whose observations add rendered camera frames."""
    gym_env = make_gym_env(env_id, max_episode_steps)
    fn = MujocoCameras(cameras, size)
    return GymnasiumDmEnv(gym_env, seed=seed, observation_fn=fn,
                          observation_spec=fn.observation_spec(gym_env.observation_space.shape[0]))
