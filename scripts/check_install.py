#!/usr/bin/env python3
"""Test what users install: the built wheel, in a new project made by the README's quick start.

Run by ``make test-install`` (and so by CI). It builds the sdist and, from it,
the wheel (as ``pip`` does for an sdist); checks that the wheel holds every
tracked file of the package and the sdist every file of the wheel; installs the
wheel into a fresh virtualenv in a temporary directory, outside the checkout;
and there follows "Quick start in your project" literally, running each block
of the README in order: shell lines run as written (``pip install
django-delayed-attachments`` installs the built wheel instead of the index's),
each Python or template block goes at the end of the file it names. Then
``scripts/quickstart_probe.py``, run by the new project's Python, uploads an
image through the admin, and checks the page, the status endpoint and the job
dashboard before and after the Procfile's worker runs with ``--burst``.

Only the package index is reached (for Django and Pillow, through pip's cache).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "attachments"
DISTRIBUTION = "django-delayed-attachments"
QUICK_START = "## Quick start in your project"
# Besides the package, what the sdist must carry.
SDIST_EXTRAS = {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "docs/architecture.md"}
PROBE = Path(__file__).resolve().parent / "quickstart_probe.py"


class Failed(Exception):
    """A check failed; its message says which and why."""


# -- The README's quick start, as steps ---------------------------------------


@dataclass(frozen=True)
class Command:
    """A shell line of the quick start."""

    argv: tuple[str, ...]


@dataclass(frozen=True)
class Snippet:
    """A code block that goes at the end of ``path`` (created if missing)."""

    path: str
    text: str


@dataclass(frozen=True)
class QuickStart:
    steps: tuple[Command | Snippet, ...]
    worker: tuple[str, ...]  # the Procfile's worker command


FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SNIPPET_PATH = {"python": re.compile(r"^# (\S+)\n"), "django": re.compile(r"^\{# (\S+) #\}\n")}


def quick_start(readme: str) -> QuickStart:
    """Return the steps of the README's quick start, in order."""
    start = readme.index(QUICK_START) + len(QUICK_START)
    end = re.search(r"^##+ ", readme[start:], re.MULTILINE)
    section = readme[start : start + end.start() if end else None]
    steps: list[Command | Snippet] = []
    worker: tuple[str, ...] = ()
    for match in FENCE.finditer(section):
        language, body = match.groups()
        if language == "sh":
            for line in body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    steps.append(Command(tuple(shlex.split(line, comments=True))))
        elif language in SNIPPET_PATH:
            head = SNIPPET_PATH[language].match(body)
            if not head:
                raise Failed(f"A {language} block of the quick start names no file:\n{body}")
            steps.append(Snippet(head.group(1), body[head.end() :]))
        elif not language:  # a Procfile
            for line in body.splitlines():
                if line.startswith("worker:"):
                    worker = tuple(shlex.split(line.removeprefix("worker:")))
        else:
            raise Failed(f"The quick start has a {language!r} block this script cannot follow.")
    if not worker:
        raise Failed("The quick start's Procfile has no worker line.")
    return QuickStart(tuple(steps), worker)


# -- What the wheel and the sdist hold ----------------------------------------


def source_files() -> list[str]:
    """The checkout's files as a clone would have them, new ones not yet added included."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if (ROOT / name).is_file()]


def copy_sources(destination: Path) -> None:
    """Copy the sources to ``destination``: a build there sees no stale egg-info or build/."""
    for name in source_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)


def check_wheel(wheel: Path) -> set[str]:
    """Check the wheel against the checkout; return the package files it holds."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        headers = archive.read(metadata).decode()
    files = {name for name in names if name.startswith(f"{PACKAGE}/")}
    tracked = {name for name in source_files() if name.startswith(f"{PACKAGE}/")}
    problems = []
    if missing := sorted(tracked - files):
        problems.append(f"the wheel lacks {', '.join(missing)}")
    if extra := sorted(files - tracked):
        problems.append(f"the wheel has untracked {', '.join(extra)}")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append("the wheel has no LICENSE")
    for header in ("License-Expression: MIT", "Project-URL: Source, ", "Classifier: Framework"):
        if header not in headers:
            problems.append(f"the wheel's METADATA has no {header!r}")
    if problems:
        raise Failed("; ".join(problems))
    return files


def check_sdist(sdist: Path, wheel_files: set[str]) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    problems = []
    if missing := sorted((wheel_files | SDIST_EXTRAS) - names):
        problems.append(f"the sdist lacks {', '.join(missing)}")
    # A part of the test suite without its fixtures and demo project runs nowhere.
    if stray := sorted(name for name in names if name.startswith("tests/")):
        problems.append(f"the sdist has {', '.join(stray)}")
    if problems:
        raise Failed("; ".join(problems))


# -- Running it ---------------------------------------------------------------


def run(argv: list[str] | tuple[str, ...], cwd: Path, env: dict[str, str]) -> str:
    """Run a command, echoing it; fail with its output when it fails."""
    print(f"  $ {shlex.join(argv)}", flush=True)
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise Failed(
            f"{shlex.join(argv)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def follow(steps: QuickStart, wheel: Path, venv: Path, project: Path) -> dict[str, str]:
    """Carry out the quick start's steps in ``project``; return the environment they ran in."""
    bin_dir = venv / "bin"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for name in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"):
        env.pop(name, None)
    for step in steps.steps:
        if isinstance(step, Snippet):
            print(f"  + {step.path}", flush=True)
            path = project / step.path
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as file:
                file.write("\n" + step.text)
            continue
        argv = list(step.argv)
        if argv[:2] == ["pip", "install"]:
            if argv[2:] != [DISTRIBUTION]:
                raise Failed(f"Unexpected install step: {shlex.join(argv)}")
            argv = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)]
        elif argv[0] == "python":
            argv[0] = str(bin_dir / "python")
        run(argv, project, env)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the Python of the new virtualenv")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="attachments-install-"))
    try:
        steps = quick_start((ROOT / "README.md").read_text())
        print("Building the sdist and, from it, the wheel", flush=True)
        copy_sources(work / "src")
        build = [sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(work / "src")]
        run(build, work, dict(os.environ))
        (wheel,) = (work / "dist").glob("*.whl")
        (sdist,) = (work / "dist").glob("*.tar.gz")
        wheel_files = check_wheel(wheel)
        check_sdist(sdist, wheel_files)
        print(f"  {len(wheel_files)} package files in the wheel and the sdist", flush=True)

        print(f"A virtualenv with {args.python}, outside the checkout", flush=True)
        venv, project = work / "venv", work / "project"
        run([args.python, "-m", "venv", str(venv)], work, dict(os.environ))
        project.mkdir()
        print("Following the README's quick start", flush=True)
        env = follow(steps, wheel, venv, project)
        python = str(venv / "bin" / "python")
        versions = run([python, "-c", VERSIONS], project, env).strip()
        print(f"  ({versions})", flush=True)
        run([python, "manage.py", "check", "--fail-level", "WARNING"], project, env)

        print("Uploading, running the worker, looking at the pages", flush=True)
        probe = [python, str(PROBE)]
        run([*probe, "before-worker"], project, env)
        worker = [python if steps.worker[0] == "python" else steps.worker[0], *steps.worker[1:]]
        out = run([*worker, "--burst"], project, env)
        if not out.startswith("1 job processed"):
            raise Failed(f"The worker's closing line is {out!r}")
        run([*probe, "after-worker"], project, env)
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        print(f"(work left in {work})", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(work)
    print(f"Install check passed in {time.monotonic() - started:.0f} s", flush=True)
    return 0


VERSIONS = (
    "import sys, django, attachments; "
    "print(f'Python {sys.version_info[0]}.{sys.version_info[1]}, Django {django.__version__}, "
    "attachments from {attachments.__file__}')"
)

if __name__ == "__main__":
    sys.exit(main())
