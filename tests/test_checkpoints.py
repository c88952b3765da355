"""Checkpoint format: published key/shape tables, .pth round trips, clear errors for wrong files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import var_core
from var_core import PATCH_NUMS_256, PATCH_NUMS_512, CheckpointError
from var_core.zoo import ZOO

KEYS = Path(__file__).parent / "fixtures" / "keys"
TINY = Path(__file__).parent / "fixtures" / "tiny"


def _table(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", [name for name, entry in ZOO.items() if entry.family == "var-class"])
def test_published_var_key_table(name):
    entry = ZOO[name]
    with torch.device("meta"):
        model = var_core.VAR(
            depth=entry.depth,
            patch_nums=PATCH_NUMS_512 if entry.image_size == 512 else PATCH_NUMS_256,
            shared_aln=entry.depth == 36,
        )
    expected = json.loads((KEYS / f"var_{name}.keys.json").read_text())
    assert _table(model) == expected


def test_published_vqvae_key_table():
    with torch.device("meta"):
        model = var_core.VQVAE()
    expected = json.loads((KEYS / "vae_ch160v4096z32.keys.json").read_text())
    assert _table(model) == expected


@pytest.fixture(scope="module")
def published_format_pair(tmp_path_factory):
    """A small VQVAE/VAR pair with the published vocabulary, latent width and 256-px schedule, as .pth."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("pth")
    vqvae = var_core.VQVAE(ch=32)
    var = var_core.VAR(depth=2)
    torch.save(vqvae.state_dict(), folder / "vae.pth")
    torch.save(var.state_dict(), folder / "var.pth")
    return folder


def test_pth_state_dicts_load_and_generate(published_format_pair):
    vqvae = var_core.load_vqvae(published_format_pair / "vae.pth")
    var = var_core.load_var(published_format_pair / "var.pth", vqvae)
    assert var.patch_nums == PATCH_NUMS_256 and var.config["depth"] == 2
    g = torch.Generator().manual_seed(0)
    images = var_core.generate(var, vqvae, torch.tensor([3, 1000]), var_core.SamplingOptions(), g)
    assert images.shape == (2, 3, 256, 256)
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0


def test_vqvae_round_trip_matches_tokens(published_format_pair):
    vqvae = var_core.load_vqvae(published_format_pair / "vae.pth")
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    tokens = vqvae.encode(x)
    assert [t.shape for t in tokens] == [(1, pn * pn) for pn in PATCH_NUMS_256]
    assert vqvae.decode(tokens).shape == (1, 3, 256, 256)


def test_var_given_as_vqvae_says_what_it_is():
    with pytest.raises(CheckpointError, match=r"VAR-d2 transformer.*but a VQVAE was expected"):
        var_core.load_vqvae(TINY / "var.safetensors")


def test_vqvae_given_as_var_says_what_it_is():
    vqvae = var_core.load_vqvae(TINY / "vae.safetensors")
    with pytest.raises(CheckpointError, match=r"VQVAE checkpoint.*but a VAR transformer was expected"):
        var_core.load_var(TINY / "vae.safetensors", vqvae)


def test_mismatched_pair_is_refused(published_format_pair):
    vqvae = var_core.load_vqvae(TINY / "vae.safetensors")
    with pytest.raises(CheckpointError, match="do not belong together"):
        var_core.load_var(published_format_pair / "var.pth", vqvae)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        var_core.load_vqvae(path)


def test_garbage_file_is_one_sentence(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        var_core.load_vqvae(path)


def test_safetensors_round_trip_keeps_config(tmp_path):
    vqvae = var_core.VQVAE(vocab_size=64, z_channels=8, ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_nums=(1, 2, 4))
    var_core.save_checkpoint(vqvae, tmp_path / "v.safetensors", dtype=torch.float16)
    loaded = var_core.load_vqvae(tmp_path / "v.safetensors")
    assert loaded.config == vqvae.config


def test_inspect_cli_prints_json():
    out = subprocess.run(
        [sys.executable, "-m", "var_core", "inspect", str(TINY / "var.safetensors")],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info["kind"] == "var" and info["depth"] == 2 and info["num_classes"] == 10
    assert info["patch_nums"] == [1, 2, 3, 4]


def test_missing_zoo_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    from var_core.zoo import zoo_files

    with pytest.raises(CheckpointError, match=r"vae_ch160v4096z32.pth is not on this machine: put it in"):
        zoo_files("d16")
