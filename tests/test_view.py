"""`rlif-data view`: the static HTML report, opened in Debian's headless Chromium.

Chromium comes from Debian's `chromium` package (CI installs it: apt-get install -y
chromium); without it the browser tests fail and say so, rather than pass unseen.
"""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from rlif_cli.main import app
from rlif_data import schema as sc
from rlif_data.recording.reader import EpisodeReader
from rlif_data.recording.store import EpisodeStore
from rlif_data.report import pages
from rlif_data.report.writer import ViewOutputError, write_view
from tests import chromium
from tests.fakes.episodes import make_episode, write_recording

runner = CliRunner()
SIZE = 32
CAMERAS = ("front", "wrist")


def camera_episode(i, length):
    """`make_episode` with two cameras whose frames encode the step (so frames differ)."""
    episode = make_episode(i, length=length)
    state = episode[sc.STEPS][sc.OBSERVATION]
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    frames = {}
    for k, name in enumerate(CAMERAS):
        frames[name] = np.stack([np.stack([(x * 8 + t * 16) % 256, (y * 8) % 256,
                                           np.full_like(x, 100 * k + i)], -1)
                                 for t in range(length + 1)]).astype(np.uint8)
    episode[sc.STEPS][sc.OBSERVATION] = {sc.STATE_KEY: state, **frames}
    return episode


@pytest.fixture(scope="module")
def camera_dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cams") / "rec"
    schema = sc.camera_schema(3, 2, cameras=CAMERAS, size=SIZE, name="unit")
    return write_recording(directory, [camera_episode(i, 6 + 3 * i) for i in range(3)], schema)


@pytest.fixture(scope="module")
def browser():
    if chromium.chromium_path() is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (CI's .ci/run "
                    "installs it)")
    with chromium.Browser() as b:
        yield b


def test_view_of_a_two_camera_dataset_in_chromium(camera_dataset, browser, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["view", camera_dataset, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 episode pages" in result.output
    with EpisodeReader(camera_dataset) as reader:
        steps = [len(e[sc.STEPS][sc.IS_FIRST]) for e in reader]

    loaded = browser.open(str(out / "index.html"))
    assert loaded["errors"] == []
    assert browser.evaluate("document.querySelectorAll('#episodes tbody tr').length") == 3

    for i, n in enumerate(steps):
        loaded = browser.open(str(out / pages.episode_file(i)))
        assert loaded["errors"] == [], loaded["errors"]
        assert browser.evaluate("document.body.dataset.ready") == "1"
        # The frame count shown is the episode's length in steps, and every frame exists.
        assert int(browser.evaluate("document.getElementById('frame-count').textContent")) == n
        assert browser.evaluate("document.getElementById('step').max") == str(n - 1)
        assert len(os.listdir(out / pages.frame_dir(i, "c0"))) == n
        assert browser.evaluate("document.getElementById('cam-c1').naturalWidth") == SIZE

    # Scrub to the last step: both cameras show that step's frame, decoded.
    last = steps[-1] - 1
    browser.evaluate(f"(() => {{ const s = document.getElementById('step'); s.value = {last}; "
                     "s.dispatchEvent(new Event('input')); })()")
    src = browser.evaluate("document.getElementById('cam-c0').src")
    assert src.endswith(f"frames/{2:06d}/c0/{last:05d}.jpg")
    assert browser.evaluate("document.getElementById('cam-c0').decode().then(() => "
                            "document.getElementById('cam-c0').naturalHeight)") == SIZE
    assert "final observation" in browser.evaluate(
        "document.getElementById('step-label').textContent")
    shot = browser.screenshot(str(tmp_path / "episode.png"))
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(shot) > 10_000


def test_rewards_of_a_relabelled_view_mark_the_minus_one(tmp_path):
    from rlif_data import relabel as rl

    episode = rl.relabel_episode(make_episode(3, length=9), "paper")
    data = pages.episode_data(episode, 0, [], "jpg", "paper")
    flags = episode[sc.STEPS][sc.INTERVENTION][:9]
    starts = [t for t in range(1, 9) if flags[t] and not flags[t - 1]]
    assert [t for t, r in enumerate(data["reward"]) if r == -1] == [t - 1 for t in starts]
    assert data["reward_label"] == "paper view" and data["steps"] == 10
    assert data["include"] == [1] * 9  # the paper view keeps every transition
    official = pages.episode_data(rl.relabel_episode(make_episode(3, length=9), "official"), 0,
                                  [], "jpg", "official")
    assert official["include"] != data["include"] and official["include"][-1] == 0
    assert pages.episode_data(make_episode(3, length=9), 0, [], "jpg", None)["include"] is None


def test_episode_data_is_valid_json_with_non_finite_values_as_null():
    episode = make_episode(0, length=4)
    episode[sc.STEPS][sc.REWARD][1] = np.nan
    data = pages.episode_data(episode, 0, [], "jpg", None)
    assert data["reward"][1] is None
    json.dumps(data, allow_nan=False)


def test_text_from_the_data_is_escaped():
    episode = make_episode(0, length=3)
    episode[sc.EPISODE_ID] = "</script><script>alert(1)</script>"
    data = pages.episode_data(episode, 0, [], "jpg", None)
    page = pages.episode_page(data, {sc.EPISODE_ID: episode[sc.EPISODE_ID]}, "t", 1, 1, {})
    assert "<script>alert(1)" not in page
    assert page.count("<script") == 2  # the data and report.js, nothing else
    row = pages.episode_row(0, episode)
    assert "<script>alert" not in pages.index_page([row], 1, 1, "t", {})


def test_pager_links():
    assert pages.pager(1, 1) == ""
    html = pages.pager(25, 50)
    assert 'href="index-24.html" rel="prev"' in html and 'href="index-26.html" rel="next"' in html
    assert 'href="index.html"' in html and 'href="index-50.html"' in html
    assert "index-10.html" not in html  # far pages are elided
    assert pages.page_count(10_000, 200) == 50 and pages.page_count(0) == 1
    with pytest.raises(ValueError, match="positive"):
        pages.page_count(5, 0)


def test_ten_thousand_episodes_are_paginated(tmp_path, browser):
    n = 10_000
    out = tmp_path / "big"
    result = write_view((make_episode(i, length=2) for i in range(n)), str(out), title="big",
                        total=n)
    assert (result.episodes, result.index_pages, result.frames) == (n, 50, 0)
    index_pages = sorted(p for p in os.listdir(out) if p.startswith("index"))
    assert len(index_pages) == 50
    # No giant page: each list page holds at most 200 rows.
    assert max(os.path.getsize(out / p) for p in index_pages) < 100_000
    assert len(os.listdir(out / "episodes")) == n
    loaded = browser.open(str(out / "index-50.html"))
    assert loaded["errors"] == []
    assert browser.evaluate("document.querySelectorAll('#episodes tbody tr').length") == 200
    first = browser.evaluate("document.querySelector('#episodes tbody td a').textContent")
    assert first == "9800"
    assert browser.evaluate("document.querySelector('a[rel=prev]').getAttribute('href')") == \
        "index-49.html"
    loaded = browser.open(str(out / pages.episode_file(n - 1)))
    assert loaded["errors"] == []
    assert browser.evaluate("document.getElementById('frame-count').textContent") == "0"


def test_output_that_is_not_a_report_is_refused_and_left_intact(camera_dataset, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["view", camera_dataset, "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    assert "is not an rlif-data view" in " ".join(result.output.split())
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(ViewOutputError):
        write_view([make_episode(0)], str(out / "notes.txt"), title="t")


def test_an_earlier_report_is_replaced_whole(tmp_path):
    out = tmp_path / "report"
    write_view([make_episode(i) for i in range(3)], str(out), title="first")
    write_view([make_episode(0)], str(out), title="second")
    assert sorted(os.listdir(out / "episodes")) == ["000000.html"]
    assert "second" in (out / "index.html").read_text()
    assert [p for p in os.listdir(tmp_path) if p != "report"] == []  # no staging left


def test_view_of_an_empty_dataset_or_missing_path_is_bad_input(tmp_path):
    empty = tmp_path / "empty"
    EpisodeStore.open(str(empty), sc.vector_schema(3, 2, "unit")).close()
    result = runner.invoke(app, ["view", str(empty), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 2 and "holds no episodes" in " ".join(result.output.split())
    result = runner.invoke(app, ["view", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no such directory" in result.output
    assert not (tmp_path / "r").exists()
