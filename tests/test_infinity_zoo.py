"""Published Infinity through the real huggingface_hub client: the stand-in hub (tests/hub_standin.py) publishes
tiny random files under infinity-125m's names in two repositories (FoundationVision/Infinity, google/flan-t5-xl);
the model panel's switch fetches them (sizes first, progress, sha256, a damaged download fetched again) and loads
the model, then the CLI in-paints with a prompt from the cache with the hub gone. Clients run in fresh processes,
since huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE at import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hub_standin import COMMIT, StandInHub, hub_env, infinity_published, run_python
from PIL import Image

from editing.metadata import read_params
from infinity_core import load_text_encoder
from var_core import CheckpointError, zoo
from var_core.zoo import INFINITY_REPO, T5_REPO, ZOO

REVISIONS = {"VAR_EDIT_INFINITY_REVISION": COMMIT, "VAR_EDIT_FLAN_T5_REVISION": COMMIT}
ENTRY = ZOO["infinity-125m"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    return infinity_published(tmp_path_factory.mktemp("infinity-published"))


@pytest.fixture
def hub(files: dict[str, dict[str, bytes]]):
    server = StandInHub({}, files)
    yield server
    server.stop()


def pinned_env(hub: StandInHub, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The stand-in's environment with the pins on (no VAR_EDIT_UNPINNED): Infinity's files are pinned by revision."""
    env = hub_env(hub, tmp_path, **extra)
    del env["VAR_EDIT_UNPINNED"]
    return env


SWITCH = """
import json
from editing import ModelSwitch, load_model
from editing.models import fetch_files, list_models
from studio.session import Session

calls = []
switch = ModelSwitch(
    lambda name, progress: load_model(name, offline=False, listed_only=True, device="cpu"),
    None,
    "demo",
    fetch=lambda name, progress: fetch_files(name, None, progress),
)
session = Session(load_model("demo", device="cpu"))
listed = {e.name: [e.size, e.present, e.memory.gpu, e.memory.cpu] for e in list_models() if e.kind == "published"}
editor = switch.switch(session, "infinity-125m", lambda *call: calls.append(call))
after = [e.present for e in list_models() if e.name == "infinity-125m"]
info = editor.info
print(json.dumps({"listed": listed, "calls": calls, "name": info.name, "family": info.family, "fields": info.fields,
                  "after": after}))
session.close()
"""


def test_infinity_125m_is_fetched_checked_loaded_and_in_paints_offline(hub: StandInHub, files, tmp_path):
    hub.damage["infinity_vae_d16.pth"] = ("flip", 1)  # the first body is bad, under the true sha256
    env = pinned_env(hub, tmp_path, **REVISIONS)
    out = run_python(textwrap.dedent(SWITCH), env, tmp_path)
    said = json.loads(out.stdout.strip().splitlines()[-1])

    listed = said["listed"]["infinity-125m"]
    assert listed[:2] == [sum(zoo.KNOWN_SIZES[f.local] for f in ENTRY.files), False]  # the table's sizes, no network
    assert listed[2:] == list(zoo.memory_estimate("infinity-125m").__dict__.values())
    assert said["name"] == "Infinity-125M" and said["family"] == "infinity" and "prompt" in said["fields"]
    assert said["after"] == [True]

    served = {name: data for repo in (INFINITY_REPO, T5_REPO) for name, data in files[repo].items()}
    wanted = [f.filename for f in ENTRY.files]
    assert "model-00002-of-00002.safetensors" not in wanted  # the decoder-only shard is never fetched
    calls = said["calls"]
    for f in ENTRY.files:  # each file's size is said before its bytes come, then the bar runs to the end
        mine = [c for c in calls if c[0] == f.local]
        size = len(served[f.filename])
        assert mine[0] == [f.local, 0, size] and mine[-1] == [f.local, size, size], mine
    assert sorted(hub.requests("GET")) == sorted([*wanted, "infinity_vae_d16.pth"])  # the damaged one twice
    assert "infinity_vae_d16.pth arrived damaged (sha256 mismatch, attempt 1)" in out.stderr
    blobs = {p.read_bytes() for p in (tmp_path / "hf" / "hub").rglob("blobs/*")}
    assert blobs == {served[name] for name in wanted}  # nothing damaged stayed
    paths = [p for m, p, _ in hub.log if m == "GET"]
    assert all(f"/resolve/{COMMIT}/" in p for p in paths)  # fetched at the pinned revision

    # The CLI in-paints with a prompt from the cache, the hub gone, downloads off and the revisions no longer set.
    hub.stop()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((256, 256, 3)) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    mask = np.zeros((256, 256), np.uint8)
    mask[96:160, 64:192] = 255
    Image.fromarray(mask).save(tmp_path / "photo.mask.png")
    cli = [sys.executable, "-m", "editing", "photo.png", "--mask", "photo.mask.png", "--model", "infinity-125m"]
    cli += ["--prompt", "a red fox", "--device", "cpu", "--out-dir", "out", "--seed", "3", "--num-samples", "1"]
    offline = {**{k: v for k, v in env.items() if k not in REVISIONS}, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(cli, env=offline, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    [result] = (tmp_path / "out").glob("*.png")
    edited, source = np.asarray(Image.open(result).convert("RGB")), np.asarray(Image.open(tmp_path / "photo.png"))
    assert np.array_equal(edited[mask == 0], source[mask == 0]) and not np.array_equal(edited, source)
    params = read_params(result)
    assert params["prompt"] == "a red fox" and params["model"] == "Infinity-125M"
    assert "Downloading" not in run.stderr


def test_a_missing_revision_is_one_sentence_before_any_request(hub: StandInHub, tmp_path):
    cli = [sys.executable, "-m", "editing", "--mode", "generate", "--model", "infinity-125m", "--prompt", "a boat"]
    env = pinned_env(hub, tmp_path, VAR_EDIT_FLAN_T5_REVISION=COMMIT)
    run = subprocess.run([*cli, "--device", "cpu"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2 and hub.log == []
    assert run.stderr.strip() == (
        "error: infinity_125M_256x256.pth is pinned by hub revision and none is set: set VAR_EDIT_INFINITY_REVISION "
        "to the commit of FoundationVision/Infinity to fetch it from (40 hex digits, from "
        "https://huggingface.co/FoundationVision/Infinity/commits/main), or put the file in models/."
    )


def test_a_damaged_cached_file_is_removed_and_a_wrong_encoder_shard_is_one_sentence(hub: StandInHub, files, tmp_path):
    env = pinned_env(hub, tmp_path, **REVISIONS)
    code = """
from var_core import CheckpointError
from var_core.zoo import model_folder
try:
    print(model_folder("infinity-125m", download={download}))
except CheckpointError as e:
    print("REFUSED", e)
"""
    fetch = [sys.executable, "-m", "var_core", "fetch", "infinity-125m"]
    fetched = subprocess.run(fetch, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    assert "Downloading infinity-125m: infinity_125M_256x256.pth (" in fetched.stderr
    folder = Path(fetched.stdout.strip())  # the model folder, made of links to the fetched files
    shard = files[T5_REPO]["model-00001-of-00002.safetensors"]
    assert (folder / "text_encoder" / "model.safetensors").read_bytes() == shard
    assert json.loads((folder / "model.json").read_text()) == {"family": "infinity", "resolution": 256}
    blob = (folder / "infinity_125M_256x256.pth").resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped after the download was verified
    blob.write_bytes(bytes(data))
    refused = run_python(code.format(download=False), env, tmp_path).stdout.strip()
    assert refused.startswith("REFUSED infinity_125M_256x256.pth is not on this machine: put it in models/ (from ")
    assert not blob.exists()
    run_python(code.format(download=True), env, tmp_path)
    assert (folder / "infinity_125M_256x256.pth").read_bytes() == files[INFINITY_REPO]["infinity_125M_256x256.pth"]

    # A text encoder whose weights file lacks the encoder (the decoder's shard) is refused, never run half random.
    encoder = folder / "text_encoder"
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(files[T5_REPO]["model-00002-of-00002.safetensors"])
    (encoder / "model.safetensors").unlink()
    (encoder / "model.safetensors").symlink_to(wrong)
    with pytest.raises(CheckpointError, match=r"^text_encoder/ lacks \d+ of the T5 encoder's weights \(e.g. encoder"):
        load_text_encoder(encoder)


def test_fine_tuning_a_published_infinity_is_refused_before_loading_it():
    from training.finetune import TrainingError, load_start

    with pytest.raises(TrainingError, match=r"^Cannot start from infinity-2b: fine-tuning trains VAR models, not inf"):
        load_start("infinity-2b")  # the files are not here: loading would have said so, or downloaded them


def test_the_zoo_and_the_gpu_checks_2b_have_the_published_shapes():
    """The parameter counts the zoo's memory estimates use are those of the architectures (built on the meta
    device), and the GPU check's Infinity-2B is the published 2B (key table counts)."""
    import importlib.util

    import torch

    import infinity_core as ic

    bench = Path(__file__).resolve().parent.parent / "bench" / "gpu_check_infinity.py"
    spec = importlib.util.spec_from_file_location("gpu_check_infinity", bench)
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    counts = json.loads((Path(__file__).parent / "data" / "infinity_keys" / "param_counts.json").read_text())

    def params(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        two_b = ic.Infinity(**check.FULL["transformer"])
        two_b_vae = ic.BSQVAE(**check.FULL["vae"])
        layer12 = ic.Infinity(depth=12, embed_dim=768, num_heads=8, mlp_hidden=3072, text_channels=2048, bits=16,
                              pool_heads=16)  # fmt: skip
        d16_vae = ic.BSQVAE(**{**check.FULL["vae"], "bits": 16})
    assert params(two_b) == counts["infinity_2b"]["parameters"] == ZOO["infinity-2b"].parameters
    assert params(two_b_vae) == counts["vae_d32"]["parameters"] == ZOO["infinity-2b"].vae_parameters
    assert params(layer12) == ENTRY.parameters and params(d16_vae) == ENTRY.vae_parameters
    assert ENTRY.text_parameters == counts["flan_t5_xl_encoder"]["parameters"] == ZOO["infinity-2b"].text_parameters
    assert ZOO["infinity-2b"].tokens == ic.schedule_for(1.0, "1M").tokens
    assert ENTRY.tokens == ic.schedule_for(1.0, "0.06M").tokens
