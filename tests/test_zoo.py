"""Fetching the published models through the real huggingface_hub client, against the stand-in hub
of tests/hub_standin.py (tiny published-format .pth files under the published names). Every client
runs in a fresh process, since huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE at import.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_standin import hub_env, run_python

from var_core import zoo
from var_core.zoo import KNOWN_SIZES, VQVAE_FILE, ZOO

LOAD = """
from editing import Editor
editor = Editor.from_pretrained("d16", device="cpu", download={download})
print("LOADED", editor.name, editor.resolution, editor.model.var.config["depth"])
"""


def test_first_use_downloads_then_the_cache_serves_with_the_hub_gone(hub, published, tmp_path):
    env = hub_env(hub, tmp_path)
    out = run_python(LOAD.format(download=True), env, tmp_path)
    assert "LOADED VAR-d16 64 2" in out.stdout
    assert re.search(r"Downloading d16: vae_ch160v4096z32.pth \(\d+ MB\), var_d16.pth \(\d+ MB\)", out.stderr)
    assert re.search(r"var_d16.pth: 100%", out.stderr), out.stderr  # the terminal progress bar
    assert sorted(hub.requests("GET")) == sorted(published)
    assert set(hub.requests()) == set(published)  # HEADs and GETs of the two files, nothing else
    blobs = {p.read_bytes() for p in (tmp_path / "hf" / "hub").rglob("blobs/*")}
    assert blobs == set(published.values())

    hub.stop()
    for download in (True, False):
        again = run_python(LOAD.format(download=download), env, tmp_path)
        assert "LOADED VAR-d16 64 2" in again.stdout and "Downloading" not in again.stderr


def test_cli_loads_a_published_name_from_the_cache(hub, tmp_path):
    env = hub_env(hub, tmp_path)
    run_python("from var_core.zoo import fetch; fetch('d16')", env, tmp_path)
    hub.stop()
    cli = [sys.executable, "-m", "editing", "--model", "d16", "--device", "cpu", "--out-dir", "out", "--seed", "1"]
    out = subprocess.run(cli, env={**env, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_an_interrupted_download_resumes_and_ends_whole(hub, published, tmp_path):
    hub.cut_once.add("var_d16.pth")
    # The client keeps what it read in whole chunks (10 MiB); smaller ones let a 2.5 MB file span several.
    code = """
import hashlib
import json
import huggingface_hub.constants
from var_core.zoo import fetch
huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = 64 * 1024
calls = []
paths = fetch("d16", progress=lambda f, done, total: calls.append((f, done, total)))
print(json.dumps({"paths": [str(p) for p in paths], "calls": calls}))
"""
    out = json.loads(run_python(code, hub_env(hub, tmp_path), tmp_path).stdout)
    gets = [(p.rsplit("/", 1)[-1], r) for m, p, r in hub.log if m == "GET"]
    size = len(published["var_d16.pth"])
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[-1][1] or "bytes=0-")[1])
    assert gets[-2:] == [("var_d16.pth", None), ("var_d16.pth", f"bytes={resumed_at}-")]
    assert 0 < resumed_at <= size // 2
    assert Path(out["paths"][1]).read_bytes() == published["var_d16.pth"]
    var_calls = [c for c in out["calls"] if c[0] == "var_d16.pth"]
    assert var_calls[0] == ["var_d16.pth", 0, size] and var_calls[-1] == ["var_d16.pth", size, size]
    assert "Downloading" not in out  # a progress callback replaces the terminal output


@pytest.mark.parametrize("how", ["env", "argument"])
def test_offline_asks_nothing_and_says_what_to_put_where(hub, tmp_path, how):
    extra = {"HF_HUB_OFFLINE": "1"} if how == "env" else {}
    code = """
from var_core import CheckpointError
from var_core.zoo import fetch
try:
    fetch("d16", offline={offline})
except CheckpointError as e:
    print(e)
"""
    out = run_python(code.format(offline=None if how == "env" else True), hub_env(hub, tmp_path, **extra), tmp_path)
    assert hub.log == []
    message = out.stdout.strip()
    assert message.startswith("vae_ch160v4096z32.pth is not on this machine: put it in models/ with var_d16.pth")
    assert "downloads are off" in message and str(tmp_path) not in message


def test_models_folder_wins_and_is_named_as_configured(hub, published, tmp_path):
    folder = tmp_path / "my-models"
    folder.mkdir()
    (folder / VQVAE_FILE).write_bytes(published[VQVAE_FILE])
    code = """
from var_core import CheckpointError
from var_core.zoo import zoo_files
try:
    zoo_files("d16")
except CheckpointError as e:
    print(e)
"""
    env = hub_env(hub, tmp_path, VAR_MODELS_DIR="my-models")
    assert run_python(code, env, tmp_path).stdout.startswith(
        "var_d16.pth is not on this machine: put it in my-models/ ("
    )
    (folder / "var_d16.pth").write_bytes(published["var_d16.pth"])
    out = run_python("from var_core.zoo import fetch; print(fetch('d16'))", env, tmp_path)
    assert "my-models/vae_ch160v4096z32.pth" in out.stdout and hub.log == []


def test_sizes_come_from_the_hub_and_else_from_the_table(hub, published, tmp_path):
    code = """
import hashlib
import json
from var_core.zoo import catalog, model_card
cards = catalog()
card = model_card("d16", ask_hub=True)
print(json.dumps([len(cards), [(f.filename, f.size, f.exact, f.present) for f in card.files]]))
"""
    n, files = json.loads(run_python(code, hub_env(hub, tmp_path), tmp_path).stdout)
    assert n == len(ZOO)
    assert files == [[name, len(data), True, False] for name, data in published.items()]
    assert hub.requests() == list(published) and hub.requests("HEAD") == list(published)  # catalog() asked nothing
    hub.stop()
    n, files = json.loads(run_python(code, hub_env(hub, tmp_path), tmp_path).stdout)
    assert files == [[name, KNOWN_SIZES[name], False, False] for name in published]


def test_a_failed_download_is_one_sentence_without_server_paths(hub, tmp_path):
    hub.missing.add("var_d16.pth")
    code = """
from var_core import CheckpointError
from var_core.zoo import fetch
try:
    fetch("d16")
except CheckpointError as e:
    print(e)
"""
    message = run_python(code, hub_env(hub, tmp_path), tmp_path).stdout.strip()
    assert message.startswith("Could not download var_d16.pth from FoundationVision/var (HTTP 404)")
    assert message.endswith("or put the file in models/.") and str(tmp_path) not in message


def test_known_sizes_match_the_published_key_tables():
    keys = Path(__file__).parent / "fixtures" / "keys"
    for filename in (f.local for entry in ZOO.values() if entry.family == "var-class" for f in entry.files):
        size = KNOWN_SIZES[filename]
        shapes = json.loads((keys / filename.replace(".pth", ".keys.json")).read_text())
        tensor_bytes = 4 * sum(torch.Size(s).numel() for s in shapes.values())
        assert tensor_bytes < size < tensor_bytes * 1.001


def test_the_var_core_command_lists_and_fetches(hub, tmp_path):
    env = hub_env(hub, tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "var_core", *args]
        return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    offline = run("fetch", "d16", "--offline")
    assert offline.returncode == 1 and "downloads are off (offline=True)" in offline.stderr and hub.log == []
    listed = run("models")
    assert listed.returncode == 0 and hub.log == []
    assert re.search(r"^d16 +256   0.31B   1.68 GB", listed.stdout, re.M)
    infinity = r"^infinity-125m +256   0.13B  10.39 GB  infinity_125M_256x256.pth \(501 MB\)"
    assert re.search(infinity, listed.stdout, re.M)
    fetched = run("fetch", "d16")
    assert fetched.returncode == 0 and len(fetched.stdout.split()) == 2, fetched.stderr
    assert "var_d16.pth: 100%" in fetched.stderr
    assert "vae_ch160v4096z32.pth (here), var_d16.pth (here)" in run("models").stdout


def test_too_little_disk_is_said_before_downloading(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from var_core import CheckpointError, zoo

    hub = SimpleNamespace(constants=SimpleNamespace(HF_HUB_CACHE=str(tmp_path / "not-yet" / "hub")))
    monkeypatch.setattr(zoo.shutil, "disk_usage", lambda path: SimpleNamespace(free=3_000_000_000))
    monkeypatch.setenv("VAR_MODELS_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"d30 needs 8.48 GB of downloads but .* has 3.00 GB free") as info:
        zoo._check_disk(zoo.model_card("d30"), hub)
    assert "not-yet" not in str(info.value)
    zoo._check_disk(zoo.model_card("d16"), hub)  # 1.68 GB fits


def test_a_progress_callback_can_cancel_a_download(hub, tmp_path):
    code = """
from var_core.zoo import fetch

class Stop(Exception):
    pass

def progress(filename, done, total):
    if done:
        raise Stop()

try:
    fetch("d16", progress=progress)
except Stop:
    print("stopped")
"""
    assert run_python(code, hub_env(hub, tmp_path), tmp_path).stdout.strip() == "stopped"
    assert not list((tmp_path / "hf" / "hub").rglob("blobs/*"))  # nothing half-written is left as a file


# ---- every published file checked against its sha256 -------------------------------------------
FETCH = """
import hashlib
import json
from var_core import CheckpointError, zoo
{pin}
try:
    print(json.dumps([str(p) for p in zoo.fetch("d16", progress=lambda *a: None)]))
except CheckpointError as e:
    print("REFUSED", e)
"""


def cached_files(tmp_path: Path) -> list[Path]:
    """Everything in the Hugging Face cache's blobs (incomplete downloads included)."""
    return sorted(p for p in (tmp_path / "hf" / "hub").rglob("blobs/*") if p.is_file())


@pytest.mark.parametrize("how", ["flip", "cut"])
def test_a_damaged_download_is_deleted_and_fetched_once_more(hub, published, tmp_path, how):
    hub.damage["var_d16.pth"] = (how, 1)  # the first body is bad, under the true sha256
    out = run_python(FETCH.format(pin=""), hub_env(hub, tmp_path), tmp_path)
    paths = json.loads(out.stdout)
    assert Path(paths[1]).read_bytes() == published["var_d16.pth"]
    assert hub.requests("GET").count("var_d16.pth") == 2 and hub.requests("GET").count(VQVAE_FILE) == 1
    assert {p.read_bytes() for p in cached_files(tmp_path)} == set(published.values())
    assert "arrived damaged (sha256 mismatch, attempt 1)" in out.stderr


@pytest.mark.parametrize("how", ["flip", "cut"])
def test_a_file_damaged_twice_ends_in_one_sentence_and_leaves_nothing(hub, published, tmp_path, how):
    hub.damage["var_d16.pth"] = (how, 2)
    out = run_python(FETCH.format(pin=""), hub_env(hub, tmp_path), tmp_path)
    sha = hashlib.sha256(published["var_d16.pth"]).hexdigest()
    assert out.stdout.strip() == (
        f"REFUSED var_d16.pth arrived damaged twice from FoundationVision/var (its sha256 is not {sha}) and was "
        "removed; try again later, or put the file in models/."
    )
    assert hub.requests("GET").count("var_d16.pth") == 2
    assert [p.read_bytes() for p in cached_files(tmp_path)] == [published[VQVAE_FILE]]  # nothing of var_d16.pth
    assert not list((tmp_path / "hf" / "hub").rglob("var_d16.pth"))  # no snapshot link either


def test_a_pinned_sha256_wins_over_what_the_hub_announces(hub, published, tmp_path):
    pin = 'zoo.SHA256["var_d16.pth"] = "0" * 64'  # the hub serves a file that is not the pinned one
    out = run_python(FETCH.format(pin=pin), hub_env(hub, tmp_path), tmp_path)
    assert out.stdout.startswith("REFUSED var_d16.pth arrived damaged twice") and "0" * 64 in out.stdout
    assert hub.requests("GET").count("var_d16.pth") == 2


def test_a_cached_file_damaged_on_disk_is_replaced_before_loading(hub, published, tmp_path):
    env = hub_env(hub, tmp_path)
    run_python(LOAD.format(download=True), env, tmp_path)
    blob = next(p for p in cached_files(tmp_path) if p.read_bytes() == published["var_d16.pth"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped after the download was verified
    blob.write_bytes(bytes(data))
    refused = run_python(LOAD.format(download=False), env, tmp_path, check=False)
    assert "var_d16.pth is not on this machine" in refused.stderr and not blob.exists()
    assert "in the Hugging Face cache was damaged (sha256 mismatch); removed" in refused.stderr
    again = run_python(LOAD.format(download=True), env, tmp_path)
    assert "LOADED VAR-d16 64 2" in again.stdout
    assert blob.read_bytes() == published["var_d16.pth"]
    assert hub.requests("GET").count("var_d16.pth") == 2


def test_a_damaged_file_in_the_models_folder_is_refused_when_pinned(hub, published, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for name, data in published.items():
        (folder / name).write_bytes(data[:-10] + b"0123456789")
    sha = hashlib.sha256(published["var_d16.pth"]).hexdigest()
    pin = f'zoo.SHA256["var_d16.pth"] = "{sha}"'
    out = run_python(FETCH.format(pin=pin), hub_env(hub, tmp_path), tmp_path)
    assert out.stdout.strip() == (
        "REFUSED var_d16.pth in models/ is damaged (its sha256 is not the published one); replace it with the "
        "file from https://huggingface.co/FoundationVision/var."
    )
    assert hub.log == [] and (folder / "var_d16.pth").exists()  # the person's own file is left alone


def test_the_published_files_are_pinned_by_default(hub, published, tmp_path):
    """Without VAR_EDIT_UNPINNED the real hashes are pinned: the stand-in's tiny files under the published
    names are refused as not the published ones, in the models folder and from the hub alike."""
    env = {k: v for k, v in hub_env(hub, tmp_path).items() if k != "VAR_EDIT_UNPINNED"}
    out = run_python(FETCH.format(pin=""), env, tmp_path)
    assert out.stdout.startswith(f"REFUSED {VQVAE_FILE} arrived damaged twice"), out.stdout
    assert "7c3ec27ae28a3f87055e83211ea8cc8558bd1985d7b51742d074fb4c2fcf186c" in out.stdout
    folder = tmp_path / "models"
    folder.mkdir()
    for name, data in published.items():
        (folder / name).write_bytes(data)
    out = run_python(FETCH.format(pin=""), env, tmp_path)
    assert out.stdout.startswith(f"REFUSED {VQVAE_FILE} in models/ is damaged"), out.stdout


def test_no_network_is_said_at_once(hub, tmp_path):
    hub.stop()
    out = run_python(FETCH.format(pin=""), hub_env(hub, tmp_path), tmp_path)
    assert out.stdout.strip() == (
        "REFUSED Could not reach the hub for vae_ch160v4096z32.pth (no network connection to it); check the "
        "connection (or HF_ENDPOINT), or put the file in models/."
    )


def test_every_published_file_is_pinned_by_hash_or_by_revision():
    files = [f for entry in ZOO.values() for f in entry.files]
    assert all(zoo.HUB_FILES[f.local] == f for f in files)  # one key names one file of one repository
    assert set(KNOWN_SIZES) == set(zoo.HUB_FILES)
    for filename in KNOWN_SIZES:
        pinned = re.fullmatch(r"[0-9a-f]{64}", zoo.SHA256.get(filename) or "")
        assert bool(pinned) != (filename in zoo.REVISION), filename  # one of the two, never both
    pins = [*zoo.SHA256.values(), *zoo.REVISION.values()]
    assert not any((pin or "").startswith("bd66c170") for pin in pins)  # d30's replaced file, never to be pinned


D30 = """
from var_core import CheckpointError, zoo
try:
    print(zoo.fetch("d30", progress=lambda *a: None)[1].name)
    print(zoo.zoo_files("d30")[1].name)
except CheckpointError as e:
    print("REFUSED", e)
"""


def test_d30_needs_a_hub_revision_and_is_fetched_at_it(published, tmp_path):
    from hub_standin import COMMIT, StandInHub

    hub = StandInHub({VQVAE_FILE: published[VQVAE_FILE], "var_d30.pth": published["var_d16.pth"]})
    try:
        env = {k: v for k, v in hub_env(hub, tmp_path).items() if k != "VAR_EDIT_UNPINNED"}
        out = run_python(D30, env, tmp_path)
        assert out.stdout.strip() == (
            "REFUSED var_d30.pth is pinned by hub revision and none is set: set VAR_EDIT_HUB_REVISION to the commit "
            "of FoundationVision/var to fetch it from (40 hex digits, from "
            "https://huggingface.co/FoundationVision/var/commits/main), or put the file in models/."
        )
        assert hub.log == []  # said before any request
        # the stand-in's tiny VQVAE is not the pinned one: unpinned, the revision still decides where d30 comes from
        out = run_python(D30, hub_env(hub, tmp_path, VAR_EDIT_HUB_REVISION=COMMIT), tmp_path)
        assert out.stdout.split() == ["var_d30.pth", "var_d30.pth"], out.stdout + out.stderr
        d30 = {p for m, p, _ in hub.log if p.endswith("var_d30.pth")}
        assert d30 == {f"/{zoo.HF_REPO}/resolve/{COMMIT}/var_d30.pth"}
        assert all("/resolve/main/" in p for m, p, _ in hub.log if p.endswith(VQVAE_FILE))
    finally:
        hub.stop()
