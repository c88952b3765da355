"""Loading Infinity's published layouts: the 2B transformer and d32 VAE key/shape tables built on the
meta device through the real loader, real loading at reduced width from `.pth` (the published pickles:
a plain state dict with blocks in chunks, `{"vae": state_dict}` with plain or `.conv.`/`.norm.` names)
and `.safetensors`, and one-sentence refusals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import infinity_core as ic
from infinity_core import testing
from infinity_core.loading import transformer_keys_to_upstream
from var_core import CheckpointError

KEYS = Path(__file__).parent / "data" / "infinity_keys"
DTYPES = {"float32": torch.float32, "int64": torch.int64}


def _table(name: str) -> dict[str, torch.Tensor]:
    """A key -> shape table as meta tensors (nothing allocated)."""
    out = {}
    for line in (KEYS / name).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        out[key] = torch.empty(json.loads(shape), dtype=DTYPES[dtype], device="meta")
    return out


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_2b_layout_builds_full_size_on_the_meta_device():
    table = _table("infinity_2b_state_dict_shapes.tsv")
    counts = json.loads((KEYS / "param_counts.json").read_text())["infinity_2b"]
    model = ic.load_transformer(table, device="meta")
    assert model.config == dict(
        depth=32, embed_dim=2048, num_heads=16, mlp_hidden=8192, text_channels=2048, bits=32, pool_heads=16,
        text_maxlen=512, levels=15, block_chunks=8,
    )  # fmt: skip
    mine = transformer_keys_to_upstream(model.state_dict(), model.config["block_chunks"])
    assert {k: tuple(v.shape) for k, v in mine.items()} == {k: tuple(v.shape) for k, v in table.items()}
    assert len(mine) == counts["num_keys"] and _params(model) == counts["parameters"]


def test_the_d32_vae_layout_builds_full_size_on_the_meta_device():
    table = _table("vae_d32_state_dict_shapes.tsv")
    counts = json.loads((KEYS / "param_counts.json").read_text())["vae_d32"]
    vae = ic.load_vae(table, device="meta")
    assert vae.config == dict(bits=32, ch=128, ch_mult=(1, 2, 4, 4, 4), num_res_blocks=2)
    own = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    assert own == {k: tuple(v.shape) for k, v in table.items() if not k.endswith("lfq.mask")}
    assert _params(vae) == counts["parameters"]
    assert (_params(vae.encoder), _params(vae.decoder)) == (counts["encoder_parameters"], counts["decoder_parameters"])


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("layout", ["pth", "safetensors"])
def test_a_reduced_width_folder_loads_in_the_published_layouts_and_generates(tmp_path, layout):
    folder = testing.build_random_folder(tmp_path / layout, layout)
    names = sorted(p.name for p in folder.iterdir())
    if layout == "pth":
        assert isinstance(torch.load(folder / "vae_random.pth", weights_only=True)["vae"], dict)
        assert "block_chunks.1.module.0.sa.mat_qkv.weight" in torch.load(
            folder / "infinity_random.pth", weights_only=True
        )
    bundle = ic.load_folder(folder)
    assert names == ["infinity_random." + layout, "model.json", "text_encoder", "vae_random." + layout]
    assert _same_weights(bundle.transformer, testing.tiny_transformer())
    assert _same_weights(bundle.vae, testing.tiny_vae())
    assert bundle.resolution == 256 and bundle.schedule().pixels == (256, 256)
    text = bundle.text(["a red fox", "a small boat on a calm lake"])
    assert text.features.shape == (2, 8, 32) and text.lengths.tolist() == [4, 8]
    schedule = bundle.schedule(h_div_w=0.5)  # a wide picture: 1:2 template
    steps = list(ic.scales(bundle.transformer, bundle.vae, text, schedule, ic.generators([0, 1])))
    assert [s.bits.shape for s in steps] == [(2, h, w, 16) for h, w in schedule.grids]
    picture = ic.decode(bundle.vae, steps[-1].summed_codes)
    assert picture.shape == (2, 3, *schedule.pixels) and schedule.pixels == (176, 352)
    assert picture.abs().max() <= 1


def test_plain_and_wrapped_vae_layer_names_load_the_same(tmp_path):
    vae = testing.tiny_vae()
    plain = testing.vae_state_plain(vae)
    assert "encoder.conv_in.weight" in plain and "encoder.down.0.downsample.conv.weight" in plain
    torch.save({"vae": plain}, tmp_path / "vae_plain.pth")
    torch.save({"vae": vae.state_dict()}, tmp_path / "vae_wrapped.pth")
    for name in ("vae_plain.pth", "vae_wrapped.pth"):
        assert _same_weights(ic.load_vae(tmp_path / name), vae), name


def _one_sentence(message: str) -> None:
    assert message.endswith(".") and "\n" not in message and not re.search(r"[.;] [A-Z]", message), message
    assert len(message) < 300, message


def test_a_wrong_shape_is_refused_in_one_sentence(tmp_path):
    folder = testing.build_random_folder(tmp_path / "m", "safetensors")
    path = folder / "infinity_random.safetensors"
    state = load_file(str(path))
    state["block_chunks.1.module.0.ffn.fc2.weight"] = torch.zeros(64, 100)
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as info:
        ic.load_folder(folder)
    _one_sentence(str(info.value))
    assert "blocks.1.ffn.fc2.weight" in str(info.value) and "(64, 100)" in str(info.value)


def test_wrong_keys_and_mismatched_files_are_refused_in_one_sentence(tmp_path):
    folder = testing.build_random_folder(tmp_path / "m", "safetensors")
    vae_path = folder / "vae_random.safetensors"
    state = load_file(str(vae_path))
    state["encoder.extra.weight"] = torch.zeros(3)
    save_file(state, str(vae_path))
    with pytest.raises(CheckpointError) as info:
        ic.load_folder(folder)
    _one_sentence(str(info.value))
    assert "unexpected" in str(info.value)
    with pytest.raises(CheckpointError) as info:
        ic.load_vae(folder / "infinity_random.safetensors")
    _one_sentence(str(info.value))
    (folder / "model.json").write_text(json.dumps({"family": "var"}))
    with pytest.raises(CheckpointError) as info:
        ic.load_folder(folder)
    _one_sentence(str(info.value))
    with pytest.raises(CheckpointError) as info:
        ic.load_folder(tmp_path / "nowhere")
    _one_sentence(str(info.value))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_loading_peaks_near_one_copy_of_the_weights(tmp_path):
    torch.manual_seed(0)
    model = ic.Infinity(depth=8, embed_dim=512, num_heads=8, mlp_hidden=2048, text_channels=512, bits=32, pool_heads=4)
    torch.save(transformer_keys_to_upstream(model.state_dict(), 4), tmp_path / "infinity_big.pth")
    size = (tmp_path / "infinity_big.pth").stat().st_size
    code = textwrap.dedent(
        """
        import torch, infinity_core
        def status(field):
            for line in open("/proc/self/status"):
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        with torch.device("meta"):  # torch's one-time set-up for meta tensors, not part of a load
            infinity_core.Infinity(1, 64, 2, 64, 64, 8, 1)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = status("VmRSS")
        model = infinity_core.load_transformer("infinity_big.pth")
        print(status("VmHWM") - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    peak = int(out.stdout.split()[-1])
    assert size > 100e6 and peak < 1.3 * size, f"peak {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"


def test_low_precision_blocks_run_under_autocast(tmp_path):
    """dtype=bfloat16 keeps the blocks in bfloat16 and the rest in float32, as upstream loads it (CPU autocast here)."""
    folder = testing.build_random_folder(tmp_path / "m", "safetensors")
    bundle = ic.load_folder(folder, dtype=torch.bfloat16)
    model = bundle.transformer
    assert model.blocks[0].sa.mat_qkv.weight.dtype == torch.bfloat16 and model.head.weight.dtype == torch.float32
    text = bundle.text(["a red fox"])
    steps = list(ic.scales(model, bundle.vae, text, bundle.schedule(), ic.generators([0])))
    assert steps[-1].bits.shape == (1, 16, 16, 16) and steps[-1].summed_codes.dtype == torch.float32
