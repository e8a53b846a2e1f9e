"""Camera frames for robot environments: views of the sim arm, and a driver thread off the control loop.

A real camera driver delivers frames on its own thread, at its own rate, and
the control loop takes whatever frame is newest: it never waits for a
capture. `CameraDriver` is that shape: a background thread runs a *capture*
(made on the thread, so a GL context belongs to it) at ``hz`` and publishes
the newest frames; a robot env that is given it as its `FrameSource` puts
those frames into its observations instead of rendering inline.

Captures provided: `pool_capture` (copies of frames rendered up front, each
capture a fresh buffer as a driver delivers them) and `SimRenderCapture`
(renders the arm state the control loop last published, with MuJoCo).
Real cameras plug in as captures of their own.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Optional, Protocol

import numpy as np

from robot.timing import ControlRate

Images = dict[str, np.ndarray]
Capture = Callable[[int], Images]
"""``capture(sequence number) -> {camera name: HxWx3 uint8 frame}``."""

# Viewpoints of the sim arm's cameras: (azimuth, elevation) in degrees.
SIM_VIEWS = {"front": (90.0, -45.0), "side": (0.0, -20.0)}
DEFAULT_VIEW = (45.0, -30.0)
VIEW_DISTANCE = 0.6  # metres from the arm's base


def sim_camera(model, name: str, views: Optional[dict[str, tuple[float, float]]] = None):
    """MuJoCo's free camera placed at the sim arm's view called `name` (unknown names: a default)."""
    import mujoco

    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    cam.azimuth, cam.elevation = (views or SIM_VIEWS).get(name, DEFAULT_VIEW)
    cam.distance = VIEW_DISTANCE
    cam.lookat[:] = (0.0, 0.0, 0.0)
    return cam


@dataclasses.dataclass(frozen=True)
class Frames:
    """One capture: the frames, its sequence number and when it was taken.

    Attributes:
      images: frame by camera name.
      seq: capture number (0, 1, ...); the same number twice means no new frame.
      captured: when the capture started, on the driver's clock.
    """

    images: Images
    seq: int
    captured: float


class FrameSource(Protocol):
    """Where a robot env takes its observation's camera frames from (see `SimArmEnv`)."""

    def frames(self, qpos: np.ndarray) -> Images:
        """The newest frame of every camera; `qpos` is the arm's state now.

        A simulated camera shows that state; a real camera ignores it.
        """


class CameraDriver:
    """A background thread that captures frames at `hz` and keeps the newest (a `FrameSource`).

    Args:
      make_capture: called once on the driver thread; returns the `Capture`
        (so a renderer's GL context is created on the thread that uses it).
      hz: capture rate.
      publish: optional ``publish(qpos)`` the driver forwards each state the
        env hands to `frames` (e.g. `SimRenderCapture.publish_state`).
      clock: the clock of `Frames.captured` and of the pacing.
      name: thread name.
    """

    def __init__(self, make_capture: Callable[[], Capture], hz: float, *,
                 publish: Optional[Callable[[np.ndarray], None]] = None,
                 clock: Callable[[], float] = time.monotonic, name: str = "camera"):
        if hz <= 0:
            raise ValueError(f"camera rate must be positive, got {hz}")
        self.hz = hz
        self.capture_s: list[float] = []  # duration of every capture, for monitoring
        self._make_capture, self._publish, self._clock, self._name = (
            make_capture, publish, clock, name)
        self._lock = threading.Lock()
        self._latest: Optional[Frames] = None
        self._first = threading.Event()
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, timeout: float = 60.0) -> None:
        """Start capturing; returns once the first frames are there.

        Raises:
          RuntimeError: no frame within `timeout` seconds, or the capture failed.
        """
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._first.wait(timeout):
            raise RuntimeError(f"camera driver delivered no frame in {timeout:g} s")
        self._raise_if_failed()

    def stop(self) -> None:
        """Stop the thread (waits up to 10 s for the capture in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def latest(self) -> Frames:
        """The newest capture.

        Raises:
          RuntimeError: the capture thread failed (its error is the cause).
        """
        self._raise_if_failed()
        with self._lock:
            if self._latest is None:
                raise RuntimeError("camera driver not started")
            return self._latest

    def newest(self, qpos: np.ndarray) -> Frames:
        """Forward the arm state to the capture (if it renders one); return the newest capture."""
        if self._publish is not None:
            self._publish(qpos)
        return self.latest()

    def frames(self, qpos: np.ndarray) -> Images:
        """`FrameSource`: the newest frames (see `newest`)."""
        return self.newest(qpos).images

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("camera driver failed") from self._error

    def _run(self) -> None:
        try:
            capture = self._make_capture()
            rate = ControlRate(self.hz, clock=self._clock)
            seq = 0
            while not self._stop.is_set():
                rate.wait()
                t = self._clock()
                images = capture(seq)
                self.capture_s.append(self._clock() - t)
                with self._lock:
                    self._latest = Frames(images, seq, t)
                seq += 1
                self._first.set()
        except BaseException as exc:  # surfaced to the control thread by latest()/start()
            self._error = exc
            self._first.set()


def pool_capture(pool: dict[str, list[np.ndarray]]) -> Callable[[], Capture]:
    """A capture factory handing out copies of pre-rendered frames, cycling through the pool.

    Args:
      pool: frames by camera name, the same number for each.

    Raises:
      ValueError: an empty pool.
    """
    if not pool or not all(len(v) for v in pool.values()):
        raise ValueError("the frame pool is empty")
    n = min(len(v) for v in pool.values())

    def make() -> Capture:
        def capture(seq: int) -> Images:
            return {name: frames[seq % n].copy() for name, frames in pool.items()}
        return capture

    return make


class SimRenderCapture:
    """Renders the sim arm's cameras from the last published state (own MjData and GL context).

    Args:
      model: the arm's MuJoCo model (shared read-only with the env).
      names: camera names (viewpoints as in `SIM_VIEWS`).
      size: frame size in pixels.
    """

    def __init__(self, model, names: tuple[str, ...], size: int):
        self.names, self.size = tuple(names), int(size)
        self._model = model
        self._lock = threading.Lock()
        self._qpos = np.array(model.qpos0, dtype=np.float64)

    def publish_state(self, qpos: np.ndarray) -> None:
        """The arm state the next capture shows."""
        with self._lock:
            self._qpos[:] = qpos

    def __call__(self) -> Capture:
        """Make the capture (on the driver thread)."""
        import mujoco

        data = mujoco.MjData(self._model)
        renderer = mujoco.Renderer(self._model, self.size, self.size)
        cams = {name: sim_camera(self._model, name) for name in self.names}

        def capture(seq: int) -> Images:
            del seq
            with self._lock:
                data.qpos[:] = self._qpos
            mujoco.mj_kinematics(self._model, data)
            out = {}
            for name, cam in cams.items():
                renderer.update_scene(data, camera=cam)
                out[name] = renderer.render()  # a new buffer per call
            return out

        return capture
