"""examples/custom_env end to end: pip-install it into a throwaway venv, then make and list it.

The throwaway venv sees the project's packages through a ``.pth`` file (``site.addsitedir`` of
this interpreter's site-packages), so nothing is downloaded and the project venv is never
modified: the plugin is installed only into the throwaway venv, which is deleted afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import rlvr.envs as E

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_env"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("plugin")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(purelib, "_rlvr_project.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    src = tmp_path / "custom_env"
    shutil.copytree(EXAMPLE, src)  # build in a copy: no build/ or egg-info left in the repository
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(src)],
        check=True,
        timeout=300,
    )
    yield python
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_plugin_example_installs_and_works_through_gymnasium_make_and_the_cli(plugin_venv):
    script = (
        "import json, gymnasium, rlvr.envs as E\n"
        "env = gymnasium.make('acme/Riddle-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "_, reward, done, _, step = env.step(env.reference_action())\n"
        "report = E.check(env)\n"
        "print(json.dumps({'prompt': obs[-1]['content'], 'reward': reward, 'success': step['success'], 'checks': len(report.passed)}))\n"
    )
    out = subprocess.run([str(plugin_venv), "-c", script], check=True, capture_output=True, text=True, timeout=300)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["reward"] == 1.0 and got["success"] is True and got["checks"] >= 6
    assert got["prompt"].endswith("?")

    listed = subprocess.run([str(plugin_venv), "-m", "rlvr.cli.main", "envs", "list", "--json"], check=True, capture_output=True, text=True, timeout=300)
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    riddle = rows["acme/Riddle-v0"]
    assert (riddle["origin"], riddle["package"], riddle["error"]) == ("plugin", "acme-riddle 0.1.0", "")
    assert riddle["description"].startswith("Riddles")
    assert "rlvr/Math-v0" in rows  # the built-ins are still there


def test_the_project_venv_is_not_polluted_by_the_example(plugin_venv):
    E.discover_plugins(refresh=True)
    assert "acme/Riddle-v0" not in E.env_ids(include_broken=True)
