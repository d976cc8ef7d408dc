"""Installing the explorer into someone else's project, as the README's "Use it in your
project" says: build the wheel, install it into a fresh virtual environment, and explore a
test of a temporary project laid out the usual way (``tests/`` without ``__init__.py``),
then replay its failure with the command ``explorer corpus show`` prints.

The wheel is built by pip with build isolation, as ``make test`` installs the project (pip
fetches the build backend from the package index, or takes it from its cache). The fresh
environment gets the wheel alone (``--no-deps``); its dependencies are those of the
environment running the suite, seen through a ``.pth`` line (the same versions, and no
download): the explorer itself can only come from the wheel, which the test checks.
"""

from __future__ import annotations

import os
import shlex
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_TEST = textwrap.dedent('''
    import asyncio

    import pytest


    async def reserve(room, answers, lookups):
        for _ in range(lookups):
            await asyncio.sleep(0)  # the guest's session
        if room["free"]:
            await asyncio.sleep(0)  # the payment
            room["free"] = False
            answers.append("booked")
        else:
            answers.append("taken")


    @pytest.mark.explore
    async def test_one_booking_per_room():
        room, answers = {"free": True}, []
        await asyncio.gather(reserve(room, answers, 1), reserve(room, answers, 3))
        assert sorted(answers) == ["booked", "taken"]
''')


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, text=True, capture_output=True,
                          timeout=600, check=False)


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_environment_and_explores_a_project(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["EXPLORER_PROGRESS"] = "0"
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("explorer", "strategies"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet",
                  "-w", str(dist)], tmp_path, env)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("explorer-*.whl")

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install",
                      "--no-deps", "--no-index", "--quiet", str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   tmp_path, env).stdout.strip()
    (Path(purelib) / "_suite_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")

    project = tmp_path / "booking"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_rooms.py").write_text(USER_TEST)
    (project / "pyproject.toml").write_text("[project]\nname = 'booking'\nversion = '0'\n")
    where = _run([str(python), "-c", "import explorer; print(explorer.__file__)"], project,
                 env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    # The plugin registered itself: a plain pytest run explores the marked test.
    ran = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "assert ['booked', 'booked'] == ['booked', 'taken']" in ran.stdout
    [entry] = (project / "corpus").glob("*.json")

    explorer = str(venv / "bin" / "explorer")
    shown = _run([explorer, "corpus", "show", entry.name], project, env)
    [line] = [text.split("replay:", 1)[1].strip() for text in shown.stdout.splitlines()
              if text.strip().startswith("replay:")]
    argv = shlex.split(line)
    assert argv[:3] == ["explorer", "replay", "tests/test_rooms.py::test_one_booking_per_room"]
    replayed = _run([explorer, *argv[1:]], project, env)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "assert ['booked', 'booked'] == ['booked', 'taken']" in replayed.stdout
