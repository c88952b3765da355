"""The request/pipeline layer: EditRequest validation and serialisation, batched runs, reproducible
seeds, one schedule per model pair, and the option table driving the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import var_core
from editing import EditError, EditOptions, Editor, EditRequest, Limits, VarModel
from editing import editor as editing_editor
from editing.__main__ import build_parser
from editing.options import option

TINY = Path(__file__).parent / "fixtures" / "tiny"


@pytest.fixture(scope="module")
def demo() -> Editor:
    return Editor.from_pretrained("demo", device="cpu")


@pytest.fixture(scope="module")
def tiny() -> Editor:
    """The tiny random model (64 px, 10 classes): properties that hold for any model, proven in a fraction of the
    demo's time."""
    return Editor.from_files(TINY / "vae.safetensors", TINY / "var.safetensors", device="cpu")


def _picture(w: int = 64, h: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    channels = [np.sin(xx * f + p) * np.cos(yy * g + q) for f, g, p, q in rng.uniform(1, 8, (3, 4))]
    return ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)


def _box(w: int = 64, h: int = 64, x0: int = 16, y0: int = 20, x1: int = 40, y1: int = 44) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


def _requests(tmp_path: Path) -> dict[str, EditRequest]:
    Image.fromarray(_picture()).save(tmp_path / "photo.png")
    Image.fromarray(_box()).save(tmp_path / "mask.png")
    return {
        "inpaint": EditRequest("inpaint", tmp_path / "photo.png", tmp_path / "mask.png", options=EditOptions(seed=1)),
        "edit_class": EditRequest("edit_class", _picture(), _box(), class_id=2, options=EditOptions(cfg=4.0)),
        "outpaint": EditRequest("outpaint", Image.fromarray(_picture()), left=8, zoom_out=None, name="grown"),
        "generate": EditRequest("generate", class_id=None, options=EditOptions(seed=5, more_smooth=True)),
    }


@pytest.mark.parametrize("mode", ["inpaint", "outpaint", "edit_class", "generate"])
def test_request_round_trips_through_json(tmp_path, mode):
    request = _requests(tmp_path)[mode]
    data = json.loads(json.dumps(request.to_dict()))
    again = EditRequest.from_dict(data)
    assert again.to_dict() == request.to_dict()
    assert again.options == request.options and again.mode == mode


def test_round_tripped_request_gives_the_same_picture(tiny, tmp_path):
    request = _requests(tmp_path)["edit_class"].with_options(seed=11)
    again = EditRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    a, b = tiny.run([request, again])
    assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))


BAD = [
    ({"mode": "edit_class", "class_id": 2, "cfg": math.nan}, "'cfg' must be a finite number"),
    ({"mode": "edit_class", "class_id": 2, "cfg": math.inf}, "'cfg' must be a finite number"),
    ({"mode": "inpaint", "num_samples": 2.5}, "'num_samples' must be a whole number from 1 to 64"),
    ({"mode": "edit_class", "class_id": 2.5}, "'class_id' must be a whole number"),
    ({"mode": "edit_class", "class_id": "x"}, "'class_id' must be a whole number"),
    ({"mode": "inpaint", "seed": "7"}, "'seed' must be a whole number"),
    ({"mode": "inpaint", "seed": 2**63}, "'seed' must be a whole number from 0 to 9223372036854775807"),
    ({"mode": "inpaint", "seed": 1e30}, "'seed' must be a whole number"),
    ({"mode": "inpaint", "context": math.nan}, "'context' must be a finite number"),
    ({"mode": "inpaint", "context": math.inf}, "'context' must be a finite number"),
    ({"mode": "outpaint", "right": 10.5}, "'right' must be a whole number"),
    ({"mode": "outpaint", "left": math.nan}, "'left' must be a whole number"),
    ({"mode": "outpaint", "right": 100000}, "'right' must be a whole number from 0 to 16384"),
    ({"mode": "outpaint", "zoom_out": 1000}, "'zoom_out' must be a number from 1 to 8"),
    ({"mode": "outpaint", "zoom_out": math.inf}, "'zoom_out' must be a finite number from 1 to 8"),
    ({"mode": "inpaint", "dilation": -1}, "'dilation' must be a whole number from 0 to 16"),
    ({"mode": "inpaint", "feather": -3}, "'feather' must be a whole number from 0 to 256"),
    ({"mode": "inpaint", "top_k": -5}, "'top_k' must be a whole number"),
    ({"mode": "inpaint", "top_p": 1.5}, "'top_p' must be a number from 0 to 1"),
    ({"mode": "inpaint", "more_smooth": 1}, "'more_smooth' must be true or false"),
    ({"mode": "inpaint", "policy": "all"}, "'policy' must be one of touch, strength"),
    ({"mode": "inpaint", "sed": 1}, "Unknown field 'sed'"),
    ({"mode": "bogus"}, "Unknown mode 'bogus'"),
    ({"class_id": 1}, "no 'mode'"),
    ({"mode": "inpaint", "options": [1]}, '"options" must be a JSON object'),
    ({"mode": "inpaint", "image": 5}, "'image' must be a file path or a PNG data URL"),
    ({"mode": "outpaint"}, "Nothing to out-paint"),
    ({"mode": "edit_class"}, "needs a class_id"),
]


@pytest.mark.parametrize("data, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_every_bad_field_is_one_sentence(tmp_path, data, message):
    mode = data.get("mode")
    base = {"image": str(tmp_path / "p.png")} if mode in ("inpaint", "edit_class", "outpaint") else {}
    if mode in ("inpaint", "edit_class"):
        base["mask"] = str(tmp_path / "m.png")
    with pytest.raises(EditError) as caught:
        EditRequest.from_dict({**base, **data})
    text = str(caught.value)
    assert message in text, text
    assert text.count(". ") == 0 and text.endswith("."), f"not one sentence: {text}"


def test_constructor_refuses_what_from_dict_refuses():
    with pytest.raises(EditError, match="'cfg' must be a finite number"):
        EditOptions(cfg=math.nan)
    with pytest.raises(EditError, match="'right' must be a whole number from 0 to 16384"):
        EditRequest("outpaint", _picture(), right=100000)
    with pytest.raises(EditError, match="needs a mask"):
        EditRequest("inpaint", _picture())


def test_classes_are_refused_quoting_the_loaded_models_range(demo):
    last = demo.model.var.num_classes - 1
    for class_id, named in ((-1, "Class -1"), (last + 2, f"Class {last + 2}"), (10**40, "That class")):
        with pytest.raises(EditError) as refused:
            demo.run([EditRequest("edit_class", _picture(), _box(), class_id=class_id)])
        said = f"{named} does not exist: this model has classes 0 to {last} ({last + 1} for none)."
        assert str(refused.value) == said


def test_a_missing_file_is_said_to_not_exist(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short path: a refusal quotes at most 80 characters of a value
    missing = Path("holiday.png")
    with pytest.raises(EditError, match=re.escape(f"The image file '{missing}' does not exist; check the path.")):
        demo.run([EditRequest("inpaint", missing, _box())])
    with pytest.raises(EditError, match=re.escape("The mask file 'mask.png' does not exist; check the path.")):
        demo.run([EditRequest("inpaint", _picture(), Path("mask.png"))])


def test_class_beyond_the_model_and_canvas_limits_are_refused(demo):
    with pytest.raises(EditError, match="Class 50 does not exist"):
        demo.run([EditRequest("edit_class", _picture(), _box(), class_id=50)])
    small = Editor(demo.model, "cpu", limits=Limits(canvas_pixels=10_000))
    with pytest.raises(EditError, match="--max-canvas-mp"):
        small.run([EditRequest("outpaint", _picture(), right=200)])
    few = Editor(demo.model, "cpu", limits=Limits(candidate_pixels=64 * 64 * 3))
    with pytest.raises(EditError, match="--max-candidate-mp"):
        few.run([EditRequest("inpaint", _picture(), _box(), options=EditOptions(num_samples=4))])


def test_option_defaults_agree_with_the_sampler():
    assert EditOptions().sampling() == var_core.SamplingOptions()


def _mixed(seeded: EditRequest) -> list[EditRequest]:
    others = [
        EditRequest("inpaint", _picture(seed=1), _box(x0=2, x1=20), options=EditOptions(seed=21)),
        EditRequest("edit_class", _picture(seed=2), _box(y0=40, y1=60), class_id=1, options=EditOptions(seed=22)),
        EditRequest("generate", class_id=4, options=EditOptions(seed=23, top_k=50)),
        EditRequest("outpaint", _picture(seed=3), top=16, options=EditOptions(seed=24, num_samples=2)),
        EditRequest("edit_class", _picture(seed=4), _box(), class_id=7, options=EditOptions(seed=25, cfg=2.0)),
        EditRequest("generate", class_id=None, options=EditOptions(seed=26)),
        EditRequest("inpaint", _picture(seed=5), _box(x0=40, x1=60), options=EditOptions(seed=27, top_p=0.5)),
    ]
    return [*others[:3], seeded, *others[3:]]


SEEDED = dict(mode="edit_class", class_id=3, options=EditOptions(seed=1234, num_samples=2, cfg=6.0))


def test_seeded_request_is_identical_alone_in_a_batch_and_on_a_rerun(demo):
    seeded = EditRequest(image=_picture(seed=9), mask=_box(), **SEEDED)
    alone = demo.run([seeded])[0]
    batch = demo.run(_mixed(seeded))
    assert len(batch) == 8
    rerun = demo.run([seeded])[0]
    for other in (batch[3], rerun):
        assert other.seed == 1234
        for a, b in zip(alone.images, other.images, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_seeded_request_is_identical_in_another_process(tiny, tmp_path):
    seeded = EditRequest(image=_picture(seed=9), mask=_box(), **SEEDED)
    here = tiny.run([seeded])[0]
    (tmp_path / "request.json").write_text(json.dumps(seeded.to_dict()))
    script = (
        "import json, sys, numpy as np\n"
        "from editing import Editor, EditRequest\n"
        "r = EditRequest.from_dict(json.load(open(sys.argv[1])))\n"
        "res = Editor.from_files(sys.argv[3], sys.argv[4], device='cpu').run([r])[0]\n"
        "np.save(sys.argv[2], np.stack([np.asarray(im) for im in res.images]))\n"
    )
    files = [TINY / "vae.safetensors", TINY / "var.safetensors"]
    subprocess.run([sys.executable, "-c", script, tmp_path / "request.json", tmp_path / "out.npy", *files], check=True)
    there = np.load(tmp_path / "out.npy")
    assert np.array_equal(np.stack([np.asarray(im) for im in here.images]), there)


def test_request_without_seed_gets_one_recorded(tiny):
    result = tiny.run([EditRequest("generate", class_id=1)])[0]
    assert isinstance(result.seed, int) and result.params["seed"] == result.seed
    again = tiny.run([EditRequest("generate", class_id=1, options=EditOptions(seed=result.seed))])[0]
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(again.images[0]))


def test_mixed_batch_of_six(tiny):
    pictures = [_picture(seed=s) for s in range(5)]
    masks = [_box(x0=4, x1=30), _box(y0=30, y1=60), _box(x0=30, x1=60), _box(y0=2, y1=24)]
    requests = [
        EditRequest("inpaint", pictures[0], masks[0], options=EditOptions(seed=1)),
        EditRequest("inpaint", pictures[1], masks[1], options=EditOptions(seed=2, num_samples=2)),
        EditRequest("edit_class", pictures[2], masks[2], class_id=1, options=EditOptions(seed=3)),
        EditRequest("edit_class", pictures[3], masks[3], class_id=5, options=EditOptions(seed=4, cfg=3.0)),
        EditRequest("outpaint", pictures[4], right=24, bottom=8, options=EditOptions(seed=5)),
        EditRequest("generate", class_id=2, options=EditOptions(seed=6)),
    ]
    results = tiny.run(requests)
    assert [r.params["mode"] for r in results] == [r.mode for r in requests]
    assert [len(r.images) for r in results] == [1, 2, 1, 1, 1, 1]
    for request, result in zip(requests[:4], results[:4], strict=True):
        outside = request.mask == 0
        for image in result.images:
            out = np.asarray(image)
            assert out.shape == request.image.shape
            assert np.array_equal(out[outside], request.image[outside]), "pixels outside the mask changed"
            assert (out[~outside] != request.image[~outside]).any()
    grown = np.asarray(results[4].images[0])
    assert grown.shape == (72, 88, 3) and np.array_equal(grown[:64, :64], pictures[4])
    assert results[5].images[0].size == (64, 64) and results[5].params["class_id"] == 2
    assert results[2].params["class_id"] == 1 and results[0].params["class_id"] == tiny.model.var.num_classes


def test_one_bad_request_fails_alone(tiny):
    good = EditRequest("inpaint", _picture(), _box(), options=EditOptions(seed=1))
    empty = EditRequest("inpaint", _picture(), np.zeros((64, 64), np.uint8))
    broken = EditRequest("inpaint", b"not a picture", _box())
    results = tiny.run([good, empty, broken, good], return_errors=True)
    assert isinstance(results[1], EditError) and "mask is empty" in str(results[1])
    assert isinstance(results[2], EditError) and "not an image" in str(results[2])
    assert np.array_equal(np.asarray(results[0].images[0]), np.asarray(results[3].images[0]))


def test_pair_shares_one_schedule_and_mismatched_schedules_are_refused(tmp_path):
    vqvae, var = var_core.load_pair(TINY / "vae.safetensors", TINY / "var.safetensors")
    assert var.schedule is vqvae.schedule
    other = var_core.VAR(
        vocab_size=vqvae.vocab_size, z_channels=vqvae.Cvae, depth=1, embed_dim=64, num_heads=1, num_classes=3,
        patch_nums=(1, 2, 4),
    )  # fmt: skip
    var_core.save_checkpoint(other, tmp_path / "var.safetensors")
    with pytest.raises(
        var_core.CheckpointError, match=r"samples the scales 1,2,4 but the VQVAE was set up for 1,2,3,4"
    ):
        var_core.load_var(tmp_path / "var.safetensors", vqvae)
    var_core.save_checkpoint(vqvae, tmp_path / "vae.safetensors")  # records its schedule 1,2,3,4
    with pytest.raises(var_core.CheckpointError, match="do not belong together"):
        var_core.load_pair(tmp_path / "vae.safetensors", tmp_path / "var.safetensors")


def test_saved_config_is_read_back(tmp_path):
    model = var_core.VAR(vocab_size=64, z_channels=8, depth=2, embed_dim=64, num_heads=2, num_classes=3,
                         patch_nums=(1, 2, 3), norm_eps=1e-5)  # fmt: skip
    var_core.save_checkpoint(model, tmp_path / "var.safetensors")
    vqvae = var_core.VQVAE(vocab_size=64, z_channels=8, ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_nums=(1, 2, 3))
    loaded = var_core.load_var(tmp_path / "var.safetensors", vqvae)
    assert loaded.config == model.config and loaded.config["norm_eps"] == 1e-5


def test_an_absurd_position_table_is_refused_before_allocating(tmp_path):
    from safetensors.torch import save_file

    model = var_core.VAR(vocab_size=64, z_channels=8, depth=1, embed_dim=16, num_heads=1, num_classes=3,
                         patch_nums=(1, 2))  # fmt: skip
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k not in ("lvl_1L", "attn_bias_for_masking")}
    state["pos_1LC"] = state["pos_1LC"].new_zeros(1, 90000, 16)
    state["lvl_1L"] = torch.zeros(1, 90000, dtype=torch.long)
    save_file(state, str(tmp_path / "var.safetensors"))
    with pytest.raises(var_core.CheckpointError, match="more than any VAR checkpoint has"):
        var_core.load_var(tmp_path / "var.safetensors", var_core.VQVAE(vocab_size=64, z_channels=8, ch=32))


def test_a_new_option_is_one_line_in_the_table(tiny, monkeypatch):
    """A throwaway field added to the table shows up as a CLI flag, is accepted by from_dict, and
    reaches the sampler: the plans the sampler is given carry it, and the result records it."""
    extended = dataclasses.make_dataclass(
        "Extended",
        [("sharpen", float, option(0.0, float, "Sharpen", "Sharpens edges.", low=0.0, high=1.0, step=0.1))],
        bases=(EditOptions,),
        frozen=True,
    )
    help_text = build_parser(extended).format_help()
    assert "--sharpen" in help_text and "Sharpens edges." in help_text
    assert extended.from_dict({"sharpen": 0.5, "cfg": 2.0}).sharpen == 0.5
    with pytest.raises(EditError, match="'sharpen' must be a number from 0 to 1"):
        extended.from_dict({"sharpen": 3})

    seen: list[float] = []
    sampler = editing_editor.sample

    def recording(plans, *args, **kwargs):
        seen.extend(plan.options.sharpen for plan in plans)
        return sampler(plans, *args, **kwargs)

    monkeypatch.setattr(editing_editor, "sample", recording)
    options = extended.from_dict({"sharpen": 0.5, "seed": 1, "num_samples": 1}, tiny.defaults)
    (result,) = tiny.run([EditRequest("inpaint", _picture(), _box(), options=options)])
    assert seen == [0.5], "the sampler was not given the option"
    assert result.params["sharpen"] == 0.5  # and the PNG records it


def test_batch_invariance_where_matrix_products_are_not():
    """At width 1024 a row's matrix products differ in the last bits with the batch size; the
    pictures must not (they are rebuilt from each row's tokens)."""
    torch.manual_seed(0)
    vqvae = var_core.VQVAE(vocab_size=512, z_channels=16, ch=32, ch_mult=(1, 1, 2, 2, 2), num_res_blocks=1,
                           patch_nums=(1, 2, 4, 8, 16))  # fmt: skip
    var = var_core.VAR(vocab_size=512, z_channels=16, depth=1, embed_dim=1024, num_heads=8, num_classes=10,
                       patch_nums=vqvae.schedule)  # fmt: skip
    editor = Editor(VarModel(vqvae.eval(), var.eval()), "cpu")
    x = torch.randn(8, 9, 1024)
    assert not torch.equal(var.head(x[:1]), var.head(x)[:1]), "this machine's products are batch-invariant"
    box = _box(256, 256, 40, 60, 200, 180)
    seeded = EditRequest("inpaint", _picture(256, 256, 3), box, options=EditOptions(seed=77, top_k=0, top_p=0))
    alone = editor.run([seeded])[0]
    batch = editor.run(_mixed(seeded))[3]
    assert np.array_equal(np.asarray(alone.images[0]), np.asarray(batch.images[0]))
