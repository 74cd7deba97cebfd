"""The wheel installs the rooms as rlvr.<room> and nothing else at top level."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_rooms_under_rlvr_only(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True, timeout=300, cwd=tmp_path,
    )
    wheel = next(dist.glob("rlvr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"rlvr"}, tops
    assert "rlvr/verifiers/base.py" in names and "rlvr/sandbox/__init__.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", purelib, str(wheel)], check=True, timeout=300)
    # Dependencies come from the project venv's site-packages on PYTHONPATH: .pth hooks (the
    # editable install's finder) are not processed there, so only the wheel provides rlvr.
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    code = (
        "import importlib.util, rlvr, rlvr.verifiers, rlvr.sandbox, rlvr.envs, rlvr.trainer\n"
        f"assert rlvr.verifiers.__file__.startswith({str(venv)!r}), rlvr.verifiers.__file__\n"
        # (PyPI's own `verifiers` may be installed beside us: it must not come from our wheel)
        "specs = [importlib.util.find_spec(n) for n in ('verifiers', 'sandbox', 'envs', 'trainer')]\n"
        f"assert all(s is None or not (s.origin or '').startswith({str(venv)!r}) for s in specs), specs\n"
        "from rlvr.verifiers import StringVerifier\n"
        "assert StringVerifier().score('answer: 4', '4').correct\n"
        "print('ok')\n"
    )
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_editable_install_imports_rooms_from_the_checkout():
    code = "import rlvr.verifiers, rlvr.trainer; print(rlvr.verifiers.__file__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == ROOT / "verifiers" / "__init__.py"


def test_core_import_does_not_pull_torch():
    code = "import sys, rlvr.verifiers, rlvr.cli.main; assert 'torch' not in sys.modules; assert 'transformers' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
