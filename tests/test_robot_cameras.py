"""Camera frames off the control loop: `robot.cameras.CameraDriver` as the sim arm's frame source."""

import time

import numpy as np
import pytest

from robot.cameras import CameraDriver, SimRenderCapture, pool_capture
from robot.env import SimArmEnv

SIZE = 32


def _pool(n=3):
    rng = np.random.default_rng(0)
    return {cam: [rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8) for _ in range(n)]
            for cam in ("front", "side")}


def test_a_pool_driver_delivers_fresh_copies_of_the_pool_in_order():
    pool = _pool()
    driver = CameraDriver(pool_capture(pool), hz=200.0)
    driver.start()
    try:
        newest = driver.newest(np.zeros(4))
        for cam, frames in pool.items():
            np.testing.assert_array_equal(newest.images[cam], frames[newest.seq % 3])
            assert newest.images[cam] is not frames[newest.seq % 3]  # a new buffer, as a driver gives
        assert set(driver.frames(np.zeros(4))) == {"front", "side"}
    finally:
        driver.stop()


def test_a_failing_capture_is_raised_on_the_control_thread():
    def make():
        def capture(seq):
            raise OSError("camera unplugged")
        return capture

    driver = CameraDriver(make, hz=100.0)
    with pytest.raises(RuntimeError, match="camera driver failed") as info:
        driver.start(timeout=10.0)
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RuntimeError, match="camera driver failed"):
        driver.latest()
    driver.stop()
    with pytest.raises(ValueError, match="positive"):
        CameraDriver(make, hz=0)
    with pytest.raises(ValueError, match="empty"):
        pool_capture({"front": []})


class _FixedFrames:
    """A frame source that shows one frame per camera and keeps the states it was handed."""

    def __init__(self, images):
        self.images, self.states = images, []

    def frames(self, qpos):
        self.states.append(np.array(qpos))
        return self.images


def test_the_env_takes_its_frames_from_its_frame_source():
    images = {cam: frames[0] for cam, frames in _pool(1).items()}
    source = _FixedFrames(images)
    env = SimArmEnv(image_size=SIZE, max_steps=3, seed=0, frame_source=source)
    try:
        first = env.reset().observation
        second = env.step(np.array([0.5, -0.5], np.float32)).observation
        for cam in images:
            np.testing.assert_array_equal(first[cam], images[cam])
            np.testing.assert_array_equal(second[cam], images[cam])
        # The source saw the arm's state at each observation, after the step moved it.
        assert len(source.states) == 2 and not np.array_equal(*source.states)
        np.testing.assert_array_equal(source.states[-1], env.data.qpos)
    finally:
        env.close()


def test_the_render_driver_shows_what_the_env_renders_inline():
    env = SimArmEnv(image_size=SIZE, max_steps=5, seed=0)
    try:
        env.reset()
        env.step(np.array([1.0, 0.0], np.float32))
        inline = env.render_frames()
        capture = SimRenderCapture(env.model, env.cameras, env.image_size)
        driver = CameraDriver(capture, hz=100.0, publish=capture.publish_state)
        driver.start()
        try:
            # A capture after the state was published shows that state.
            seq = driver.newest(env.data.qpos).seq
            while driver.latest().seq <= seq + 1:  # two captures later (raises if it failed)
                time.sleep(0.01)
            rendered = driver.latest().images
        finally:
            driver.stop()
        for cam in env.cameras:  # the same view of the same state, pixel for pixel
            np.testing.assert_array_equal(rendered[cam], inline[cam], err_msg=cam)
        assert rendered["front"].mean() != rendered["side"].mean()  # two different views
    finally:
        env.close()
