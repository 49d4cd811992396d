"""The lock file: it covers pyproject.toml's requirements, and the venv that `make install` built
holds exactly the locked environment, every package at its locked version and nothing else
(docs/pipeline.md, "Lock file")."""

from __future__ import annotations

import importlib.metadata
import os
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest's own dependency there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
# Written by `make install` (and the Dockerfile) into the venv: the lock it installed.
STAMP = Path(sys.prefix) / ".segnas-installed"
# In the venv but not in the lock: the venv's own installer and the project (installed --no-deps).
NOT_LOCKED = {"pip", "segnas"}


def read_lock(path: Path) -> dict[str, Version]:
    """{normalised name: version} of a lock written by `uv pip compile` (`make lock`)."""
    pins: dict[str, Version] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line or line[0] in " #-":  # hashes and "via" lines, comments, pip options
            continue
        req = Requirement(line.rstrip(" \\"))
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(
                f"{path}:{number}: {line!r} is not an exact pin; regenerate it with `make lock`"
            )
        pins[canonicalize_name(req.name)] = Version(specs[0].version)
    return pins


def installed() -> dict[str, list[Version]]:
    """{normalised name: versions} of the distributions in this interpreter's site-packages."""
    found: dict[str, list[Version]] = {}
    paths = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    for dist in importlib.metadata.distributions(path=paths):
        found.setdefault(canonicalize_name(dist.metadata["Name"]), []).append(Version(dist.version))
    return found


def test_lock_satisfies_pyproject():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["dev"],
        *pyproject["build-system"]["requires"],  # `make install` builds with the locked ones
    ]
    pins = read_lock(LOCK)
    stale = []
    for text in wanted:
        req = Requirement(text)
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            stale.append(f"{req.name} is not locked")
        elif not req.specifier.contains(version, prereleases=True):
            stale.append(f"{req.name}=={version} is outside pyproject.toml's {text!r}")
    assert not stale, (
        f"{LOCK.name} is behind pyproject.toml: {'; '.join(stale)}; "
        "regenerate it with `make lock` and commit it"
    )


def test_venv_holds_exactly_the_locked_environment():
    if not STAMP.is_file():
        reason = (
            f"not running in a venv built by `make install` (no {STAMP}); "
            "run `make install && .venv/bin/pytest tests/test_environment.py`"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must install with `make install`")
        pytest.skip(reason)
    lock = REPO / STAMP.read_text().strip()
    pins = read_lock(lock)
    have = installed()
    problems = []
    for name, version in sorted(pins.items()):
        versions = have.get(name, [])
        if versions != [version]:
            found = f"installed {', '.join(map(str, versions))}" if versions else "not installed"
            problems.append(f"{name}: locked {version}, {found}")
    problems += [
        f"{name} {', '.join(map(str, versions))}: installed but not in the lock"
        for name, versions in sorted(have.items())
        if name not in pins and name not in NOT_LOCKED
    ]
    assert not problems, (
        f"{sys.prefix} differs from {lock}:\n  "
        + "\n  ".join(problems)
        + f"\nreinstall it: rm -rf {sys.prefix} && make install"
    )
