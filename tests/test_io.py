import errno
import os

import pytest

from segnas.errors import ConfigError, SegnasError
from segnas.io import (
    WriteError,
    atomic_path,
    read_json,
    read_yaml,
    remove_stale_temps_under,
    write_json,
    write_text,
)


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_disk_full_names_the_path_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "big.txt"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WriteError, match=r"no space left.*big\.txt"):
        write_text(target, "data")
    assert list((tmp_path / "sub").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(WriteError, match="read-only or not writable"):
        write_text(ro / "x.txt", "data")


def test_read_only_directory_simulated(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(WriteError, match=r"cannot write .*x\.txt: the directory is read-only"):
        write_text(tmp_path / "x.txt", "data")


def test_yaml_is_read_safely_with_clear_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        read_yaml(tmp_path / "bad.yaml")
    (tmp_path / "evil.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(tmp_path / "evil.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SegnasError, match=r"bad\.json is not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_stale_temps_under_a_tree_are_removed_and_nothing_else(tmp_path):
    root = tmp_path / "search"
    (root / "rounds" / "r00000").mkdir(parents=True)
    kept = [root / "archs.csv", root / "rounds" / "r00000" / "e0000.json", root / ".hidden"]
    for path in kept:
        path.write_text("x")
    stale_file = root / "rounds" / "r00000" / ".e0001.json.k2j_x9a1.tmp"
    stale_file.write_text("half")
    stale_dir = root / ".controller.ab12cd34.tmp"
    (stale_dir / "inner").mkdir(parents=True)
    (stale_dir / "inner" / ".round.pt.zz99yy88.tmp").write_text("half")
    removed = remove_stale_temps_under(root)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert not stale_file.exists() and not stale_dir.exists()
    assert all(path.read_text() == "x" for path in kept)
    assert remove_stale_temps_under(tmp_path / "missing") == []
