"""`pip install ./sdk/python` works offline: no index, no build isolation
(the build backend is the machine's setuptools), and the installed package
imports and runs its verifier."""

import pathlib
import shutil
import subprocess
import sys

from conftest import REPO


def test_pip_install_offline(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO / "sdk" / "python", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-index",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "rendertrust" / "py.typed").exists()
    run = subprocess.run([sys.executable, "-c", "import rendertrust, rendertrust.verify; print(rendertrust.__version__)"],
                         cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "1.0.0a1", run.stdout + run.stderr
