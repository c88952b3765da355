"""The edit loop's guarantees, mask policies, canvas work and bad input, on the tiny reference model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from editing import EditCancelled, EditError, EditOptions, Editor, EditRequest, read_params, save_png
from editing.masks import scale_masks
from editing.teacher_forcing import TeacherForcing, encode_source, run_edit
from var_core import CheckpointError, SamplingOptions

TINY = Path(__file__).parent / "fixtures" / "tiny"


@pytest.fixture(scope="module")
def editor() -> Editor:
    return Editor.from_pretrained(TINY, device="cpu")


def _picture(w: int = 64, h: int = 64, seed: int = 0) -> Image.Image:
    """A smooth picture with some structure (random noise would be unlike any photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    channels = [np.sin(xx * f + p) * np.cos(yy * g + q) for f, g, p, q in rng.uniform(1, 8, (3, 4))]
    return Image.fromarray(((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8))


def _stroke(w: int = 64, h: int = 64) -> np.ndarray:
    """A diagonal brush stroke, uint8 (H, W), 255 = regenerate."""
    mask = np.zeros((h, w), np.uint8)
    for t in np.linspace(0.2, 0.7, 50):
        cx, cy = int(t * w), int((0.3 + 0.5 * t) * h)
        mask[max(0, cy - 3) : cy + 4, max(0, cx - 3) : cx + 4] = 255
    return mask


def test_nothing_regenerated_reproduces_the_plain_tokens(editor):
    x = torch.from_numpy(np.array(_picture())).permute(2, 0, 1)[None].float() / 127.5 - 1
    source = encode_source(editor.model.vqvae, x)
    none = [torch.zeros(pn * pn, dtype=torch.bool) for pn in editor.model.var.patch_nums]
    labels = torch.tensor([editor.model.var.num_classes])
    for replay in (False, True):
        _, tokens = run_edit(editor.model.var, editor.model.vqvae, labels, SamplingOptions(), source, none, replay)
        for got, want in zip(tokens, source.tokens, strict=True):
            assert torch.equal(got, want)


def test_replay_keeps_the_image_tokens_outside_the_mask(editor):
    x = torch.from_numpy(np.array(_picture())).permute(2, 0, 1)[None].float() / 127.5 - 1
    source = encode_source(editor.model.vqvae, x)
    masks = scale_masks(torch.from_numpy(_stroke() / 255.0), editor.model.var.patch_nums)
    labels = torch.full((3,), editor.model.var.num_classes)
    g = torch.Generator().manual_seed(0)
    _, tokens = run_edit(
        editor.model.var, editor.model.vqvae, labels, SamplingOptions(top_k=0, top_p=0), source, masks, True, g
    )
    for got, want, regen in zip(tokens, source.tokens, masks, strict=True):
        assert torch.equal(got[:, ~regen], want.expand(3, -1)[:, ~regen])


def test_consistent_teacher_forcing_quantizes_against_the_real_history(editor):
    x = torch.from_numpy(np.array(_picture())).permute(2, 0, 1)[None].float() / 127.5 - 1
    source = encode_source(editor.model.vqvae, x)
    masks = scale_masks(torch.from_numpy(_stroke() / 255.0), editor.model.var.patch_nums)
    quant = editor.model.vqvae.quantize
    f_before, seen = [], []

    from var_core import sample_scales

    keep = TeacherForcing.for_rows(editor.model.vqvae, [source], [masks], [False], "cpu")
    g = torch.Generator().manual_seed(1)
    for step in sample_scales(editor.model.var, editor.model.vqvae, torch.tensor([10]), SamplingOptions(), g, keep):
        seen.append(step.tokens.clone())
        f_before.append(step.f_hat.clone())
    history = [torch.zeros_like(f_before[0])] + f_before[:-1]
    for k, regen in enumerate(masks):
        expected = quant.nearest_code(quant.downsample(source.latent - history[k], k))
        assert torch.equal(seen[k][:, ~regen], expected[:, ~regen])


@pytest.mark.parametrize("feather", [0, 6])
def test_pixels_outside_the_mask_are_unchanged(editor, feather):
    picture, mask = _picture(), _stroke()
    result = editor.inpaint(picture, Image.fromarray(mask), EditOptions(seed=3, feather=feather, num_samples=2))
    original = np.asarray(picture)
    for image in result.images:
        out = np.asarray(image)
        assert np.array_equal(out[mask == 0], original[mask == 0])
        assert (out[mask > 0] != original[mask > 0]).any()


def test_touch_policy_touches_the_finest_cells_and_covered_coarse_ones():
    mask = torch.zeros(64, 64)
    mask[0:40, 0:24] = 1  # covers 5/8 x 3/8 of the picture
    patch_nums = (1, 2, 4, 8)
    masks = scale_masks(mask, patch_nums)
    assert not masks[0].any()  # less than half of the picture
    assert masks[1].view(2, 2).tolist() == [[True, False], [False, False]]
    assert masks[2].view(4, 4)[:2, :1].all() and masks[2].sum() == 2  # cells covered more than half
    finest = masks[3].view(8, 8)
    assert finest[:5, :3].all() and finest.sum() == 15  # every touched cell


def test_dilation_grows_the_regenerated_area():
    mask = torch.zeros(64, 64)
    mask[28:36, 28:36] = 1
    plain = scale_masks(mask, (1, 2, 4, 8))[-1].sum()
    grown = scale_masks(mask, (1, 2, 4, 8), dilation=1)[-1].sum()
    assert grown > plain


def test_strength_keeps_the_coarse_scales():
    mask = torch.zeros(64, 64)
    mask[16:48, 16:48] = 1
    patch_nums = (1, 2, 3, 4, 6, 8)
    touch = scale_masks(mask, patch_nums)
    strong = scale_masks(mask, patch_nums, policy="strength", strength=3)
    for k, (a, b) in enumerate(zip(touch, strong, strict=True)):
        assert torch.equal(b, a) if k >= 3 else not b.any()


def test_compat_policy_keeps_the_first_scales_whole():
    mask = torch.zeros(16, 16)
    mask[4:12, 4:12] = 1
    masks = scale_masks(mask, (1, 2, 4, 8, 16), policy="compat")
    assert not masks[0].any() and not masks[1].any()
    assert masks[-1].view(16, 16)[4:12, 4:12].all() and masks[-1].sum() == 64


def test_unconditional_inpaint_runs_one_cfg_branch(editor, monkeypatch):
    rows = []
    step = editor.model.var.step

    def spy(x, *args):
        rows.append(x.shape[0])
        return step(x, *args)

    monkeypatch.setattr(editor.model.var, "step", spy)
    editor.inpaint(_picture(), Image.fromarray(_stroke()), EditOptions(seed=0, num_samples=2))
    assert set(rows) == {2}
    rows.clear()
    editor.edit_class(_picture(), Image.fromarray(_stroke()), 3, EditOptions(seed=0, num_samples=2))
    assert set(rows) == {4}


def test_an_image_is_encoded_once_across_edits(editor, monkeypatch):
    calls = []
    real = editor.model.encode
    monkeypatch.setattr(editor.model, "encode", lambda *a: calls.append(1) or real(*a))
    picture, mask = _picture(seed=7), Image.fromarray(_stroke())
    editor.inpaint(picture, mask, EditOptions(seed=1))
    editor.inpaint(picture, mask, EditOptions(seed=2, num_samples=3))
    editor.edit_class(picture, mask, 1, EditOptions(seed=3))
    assert len(calls) == 1


def test_same_seed_same_result_and_more_smooth_runs(editor):
    picture, mask = _picture(), Image.fromarray(_stroke())
    a = editor.inpaint(picture, mask, EditOptions(seed=5, more_smooth=True))
    b = editor.inpaint(picture, mask, EditOptions(seed=5, more_smooth=True))
    assert a.seed == 5 and np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))


@pytest.mark.parametrize(
    "mode, fields",
    [("inpaint", {"mask": _stroke()}), ("outpaint", {"left": 64, "right": 128}), ("generate", {"class_id": 2})],
    ids=["inpaint", "panorama", "generate"],
)
def test_each_candidate_is_made_again_alone_from_its_own_seed(editor, mode, fields):
    picture = None if mode == "generate" else _picture()
    result = editor.run([EditRequest(mode, picture, **fields, options=EditOptions(seed=11, num_samples=3))])[0]
    assert len(result.seeds) == 3 and len(set(result.seeds)) == 3 and result.seeds[0] == 11
    for i, seed in enumerate(result.seeds):
        again = editor.run([EditRequest(mode, picture, **fields, options=EditOptions(seed=seed, num_samples=1))])[0]
        assert again.seeds == [seed]
        assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[i])), f"candidate {i + 1}"


def test_large_photo_round_trip(editor):
    photo = _picture(4000, 3000)
    mask = np.zeros((3000, 4000), np.uint8)
    mask[1200:1300, 2500:2640] = 255
    result = editor.inpaint(photo, Image.fromarray(mask), EditOptions(seed=0))
    out, original = np.asarray(result.images[0]), np.asarray(photo)
    assert result.images[0].size == (4000, 3000)
    assert np.array_equal(out[mask == 0], original[mask == 0])
    assert (out[mask > 0] != original[mask > 0]).any()


def test_outpaint_grows_the_canvas_and_keeps_the_picture(editor):
    picture = _picture()
    result = editor.outpaint(picture, left=8, right=24, top=0, bottom=16, options=EditOptions(seed=0))
    out = np.asarray(result.images[0])
    assert result.images[0].size == (64 + 32, 64 + 16)
    assert np.array_equal(out[0:64, 8:72], np.asarray(picture))


def test_panorama_outpaint_in_windows(editor):
    picture = _picture()
    result = editor.outpaint(picture, left=64, right=128, options=EditOptions(seed=0))
    out = np.asarray(result.images[0])
    assert result.images[0].size == (256, 64)
    assert np.array_equal(out[:, 64:128], np.asarray(picture))
    assert out[:, :64].std() > 0 and out[:, 128:].std() > 0


def test_zoom_out_keeps_the_size(editor):
    result = editor.outpaint(_picture(), zoom_out=2.0, options=EditOptions(seed=0))
    assert result.images[0].size == (64, 64)


@pytest.mark.parametrize(
    "mask, message",
    [
        (np.zeros((64, 64), np.uint8), "mask is empty"),
        (np.full((64, 64), 255, np.uint8), "covers the whole picture"),
        (np.zeros((32, 48), np.uint8), "mask is 48x32 but the image is 64x64"),
    ],
)
def test_bad_masks_say_what_to_do(editor, mask, message):
    with pytest.raises(EditError, match=message):
        editor.inpaint(_picture(), Image.fromarray(mask))


def test_not_an_image(editor):
    with pytest.raises(EditError, match="not an image"):
        editor.inpaint(io.BytesIO(b"definitely not a picture"), Image.fromarray(_stroke()))


def test_decompression_bomb_is_refused(editor, tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(path)
    with pytest.raises(EditError, match="megapixels"):
        editor.inpaint(path, Image.fromarray(_stroke()))


def test_class_out_of_range(editor):
    with pytest.raises(EditError, match="Class 11 does not exist"):
        editor.edit_class(_picture(), Image.fromarray(_stroke()), 11)


def test_checkpoint_pair_that_does_not_belong_together(tmp_path):
    import var_core

    other = var_core.VAR(
        vocab_size=128, z_channels=8, depth=1, embed_dim=64, num_heads=1, num_classes=3, patch_nums=(1, 2, 3, 4)
    )
    var_core.save_checkpoint(other, tmp_path / "var.safetensors")
    with pytest.raises(CheckpointError, match="do not belong together"):
        Editor.from_files(TINY / "vae.safetensors", tmp_path / "var.safetensors", device="cpu")


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK", "P"])
def test_any_image_mode_is_read(editor, mode, tmp_path):
    picture = _picture()
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(picture.convert("L")).astype(np.uint16) * 257)
        assert converted.mode == "I;16"
    else:
        converted = picture.convert(mode)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    converted.save(path)
    result = editor.inpaint(path, Image.fromarray(_stroke()), EditOptions(seed=0))
    assert result.images[0].mode == "RGB" and result.images[0].size == (64, 64)


def test_exif_orientation_is_applied(editor, tmp_path):
    picture = _picture(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    picture.save(path, exif=exif)
    result = editor.inpaint(path, Image.fromarray(_stroke(48, 64)), EditOptions(seed=0))
    assert result.images[0].size == (48, 64)


def test_png_carries_parameters_and_is_not_overwritten(editor, tmp_path):
    result = editor.inpaint(_picture(), Image.fromarray(_stroke()), EditOptions(seed=9, num_samples=2))
    path = save_png(result.images[0], tmp_path / "out.png", result.params)
    assert read_params(path)["seed"] == 9 and read_params(path)["mode"] == "inpaint"
    second = save_png(result.images[1], tmp_path / "second.png", result.png_params(1))
    assert read_params(second)["candidate"] == 2 and read_params(second)["candidate_seed"] == result.seeds[1]
    with pytest.raises(FileExistsError):
        save_png(result.images[0], path, result.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "second.png"]


def test_cancel_stops_the_edit(editor):
    job = editor.submit([EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=0))], previews=True)
    job.cancel()
    with pytest.raises(EditCancelled):
        job.result(timeout=60)


def test_cancel_after_the_last_scale_still_stops_before_decoding(editor):
    from editing import EditJob

    class StopAtLast(EditJob):
        def report(self, progress):
            super().report(progress)
            if progress.step == progress.total - 1:
                self.cancel()

    job = StopAtLast(previews=True)
    with pytest.raises(EditCancelled):
        editor.run([EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=0))], job)


def test_previews_stream_every_scale(editor):
    request = EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=0, num_samples=2))
    job = editor.submit([request], previews=True)
    steps = [(p.step, p.total, len(p.previews[0]), p.previews[0][0].size) for p in job.updates(timeout=60)]
    job.result()
    K = editor.num_scales
    assert [s[0] for s in steps] == list(range(1, K + 1)) and all(s[1] == K and s[2] == 2 for s in steps)


def test_previews_change_only_the_cells_the_edit_redraws(editor):
    """While an edit runs, the kept cells of every preview show the picture itself, from the first scale on."""
    picture = _picture()
    request = EditRequest("inpaint", picture, _stroke(), options=EditOptions(seed=0, num_samples=2))
    cells = editor.preview_cells(request).regenerated
    job = editor.submit([request], previews=True)
    shown = [np.asarray(image) for p in job.updates(timeout=60) for image in p.previews[0]]
    job.result()
    R, P = picture.size[0], cells.shape[0]
    redrawn = cells.repeat(R // P, 0).repeat(R // P, 1)
    assert redrawn.any() and not redrawn.all()
    for image in shown:
        assert np.array_equal(image[~redrawn], np.asarray(picture)[~redrawn])
    assert any(not np.array_equal(image[redrawn], np.asarray(picture)[redrawn]) for image in shown)


def test_region_past_the_border_is_free_and_the_rest_is_not():
    from editing.canvas import Region

    region = Region(x0=-8, y0=0, side=32)  # 8 columns left of a 24x16 picture, 16 rows below it
    outside = region.outside(24, 16)
    assert outside[:, :8].all() and outside[16:, :].all()
    assert not outside[:16, 8:].any()
    inside, local = region.overlap(24, 16)
    assert inside == (slice(0, 16), slice(0, 24)) and local == (slice(0, 16), slice(8, 32))


def test_masks_as_people_save_them(tmp_path):
    from editing.canvas import load_mask

    painted = np.zeros((16, 16, 3), np.uint8)
    painted[4:8, 4:8] = (255, 0, 255)  # the studio's brush colour, saved as plain RGB
    painted[10:12, 10:12] = (0, 200, 90)  # any other colour counts too
    Image.fromarray(painted).save(tmp_path / "rgb.png")
    mask = load_mask(tmp_path / "rgb.png", (16, 16))
    assert mask[4:8, 4:8].all() and mask[10:12, 10:12].all() and mask.sum() == 20

    values = np.zeros((16, 16), np.float32)
    values[2:6, 2:6] = 1.0
    values[8:10, 8:10] = 0.4  # below one half of the 0-1 range: kept
    Image.fromarray(values, "F").save(tmp_path / "float.tiff")
    mask = load_mask(tmp_path / "float.tiff", (16, 16))
    assert mask[2:6, 2:6].all() and mask.sum() == 16

    grey = np.full((16, 16), 100, np.uint8)
    grey[:, 8:] = 200
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert (load_mask(tmp_path / "grey.png", (16, 16)) == (grey >= 128)).all()

    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[0:4, 0:4, 3] = 255  # opaque strokes on a transparent layer
    Image.fromarray(rgba, "RGBA").save(tmp_path / "layer.png")
    assert load_mask(tmp_path / "layer.png", (16, 16)).sum() == 16


def test_a_mask_bomb_is_refused_before_decoding(tmp_path):
    from editing.canvas import load_mask

    Image.new("1", (9000, 9000)).save(tmp_path / "bomb.png")
    with pytest.raises(EditError, match="mask is 9000x9000 pixels"):
        load_mask(tmp_path / "bomb.png", (64, 64))


def test_brush_colour_rgb_mask_edits_the_painted_area(editor, tmp_path):
    painted = np.zeros((64, 64, 3), np.uint8)
    painted[20:40, 20:40] = (255, 0, 255)
    Image.fromarray(painted).save(tmp_path / "mask.png")
    result = editor.inpaint(_picture(), tmp_path / "mask.png", EditOptions(seed=0))
    out, original = np.asarray(result.images[0]), np.asarray(_picture())
    assert (out[20:40, 20:40] != original[20:40, 20:40]).any()
    assert np.array_equal(out[:20], original[:20])


def test_time_limit_ends_an_edit_cleanly(editor):
    job = editor.submit([EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=0))], time_limit=0)
    with pytest.raises(EditError, match="--max-edit-seconds"):
        job.result(timeout=60)
    assert editor.inpaint(_picture(), _stroke(), EditOptions(seed=0)).images  # the editor still works


def test_a_small_edit_does_not_wait_for_a_big_one(editor):
    """Two visitors' edits share the device step by step: the small one, sent once the big one has the device
    (its first scale reported), ends while the big one still has most of its 72 steps to go."""
    big = EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=0, num_samples=64))
    small = EditRequest("inpaint", _picture(seed=1), _stroke(), options=EditOptions(seed=1))
    big_job = editor.submit([big], previews=True, visitor="big")
    first = next(big_job.updates(timeout=120))
    assert first.step == 1 and not big_job.done
    small_job = editor.submit([small], visitor="small")
    small_job.result(timeout=120)
    assert not big_job.done, "the small edit waited for the whole big one"
    assert len(big_job.result(timeout=300)[0].images) == 64


def test_mask_tools_invert_grow_and_select_an_object():
    from PIL import ImageDraw

    from editing.mask_tools import grow, invert, select_object

    mask = np.zeros((64, 64), bool)
    mask[20:30, 20:30] = True
    assert invert(mask).sum() == 64 * 64 - 100
    assert grow(mask, 3).sum() > 100 and grow(mask, -3).sum() < 100 and grow(mask, -3).any()
    picture = Image.fromarray(np.asarray(_picture(256, 256)))
    ImageDraw.Draw(picture).ellipse((70, 60, 190, 170), fill=(250, 200, 40), outline=(90, 50, 0), width=4)
    face = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(face).ellipse((70, 60, 190, 170), fill=255)
    face = np.asarray(face) > 0
    box = np.zeros((256, 256), bool)  # a rough box drawn around the object
    box[50:54, 60:200] = box[176:180, 60:200] = box[50:180, 60:64] = box[50:180, 196:200] = True
    selected = select_object(np.asarray(picture), box)
    assert (selected & face).sum() / (selected | face).sum() >= 0.7
    with pytest.raises(EditError, match="Draw a rough box"):
        select_object(np.asarray(picture), np.zeros((256, 256), bool))


def test_cells_shown_before_running_are_the_cells_the_edit_redraws(editor):
    request = EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=0, dilation=1))
    planned = editor.preview_cells(request)
    done = editor.run([request])[0]
    assert planned.images == [] and np.array_equal(planned.regenerated, done.regenerated)
    assert planned.region == done.region


def test_fast_and_exact_requests_in_one_run_match_their_runs_alone(editor):
    """The fast mode's bfloat16 scales run for a whole batch, so fast and exact requests are sampled in separate
    passes: each gives what it gives alone, in its place."""
    exact = EditRequest("inpaint", _picture(), _stroke(), options=EditOptions(seed=3))
    fast = EditRequest("inpaint", _picture(seed=1), _stroke(), options=EditOptions(seed=4, fast=True))
    together = editor.run([fast, exact])
    for request, result in zip((fast, exact), together, strict=True):
        alone = editor.run([request])[0]
        assert result.params["fast"] == request.options.fast
        assert np.array_equal(np.asarray(result.images[0]), np.asarray(alone.images[0]))
