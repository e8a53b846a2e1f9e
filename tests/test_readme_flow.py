"""The README's end-to-end flow runs as written (record -> relabel -> merge -> publish -> push -> pull -> read)."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flow_block() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## A lab's flow, end to end", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)\n```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_flow_runs_as_written(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    env.pop("RLIF_DATA_ROOT", None)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", flow_block()], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "8 episodes; first has" in out
    assert re.search(r"\d+ transitions in the paper view, rewards \[-1\.0, 0\.0\]", out), out
    assert "8 episodes through tf.data" in out
    # Bob's registry holds the pulled version; Alice's is untouched by the pull.
    assert os.path.isdir(tmp_path / "flow" / "bob" / "datasets" / "hopper")
    assert "Traceback" not in result.stderr
