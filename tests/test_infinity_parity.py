"""Number-for-number parity of `infinity_core` with the upstream Infinity code on a reference fixture.

The fixture folder (config.json, weights, upstream's outputs; see tests/data/infinity_tiny/README.md)
comes from $INFINITY_PARITY_FIXTURE, default the tiny one shipped in tests/data/infinity_tiny; any
fixture made the same way must pass. Bits must be equal except where upstream's post-CFG margin
is under 1e-3; logits, codes and decoded floats within 1e-3; encoded bits equal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import infinity_core as ic
from infinity_core.testing import build_fixture_folder

FIXTURE = Path(os.environ.get("INFINITY_PARITY_FIXTURE", Path(__file__).parent / "data" / "infinity_tiny"))
ATOL = 1e-3
MARGIN = 1e-3


@pytest.fixture(scope="module")
def ref():
    cfg = json.loads((FIXTURE / "config.json").read_text())
    [transformer] = FIXTURE.glob("infinity*.safetensors")
    [vae] = FIXTURE.glob("vae*.safetensors")
    feats = torch.from_numpy(np.load(FIXTURE / "t5_last_hidden_state.npy"))[None]
    sampling = cfg["sampling"]
    schedule = ic.Schedule(
        sampling["h_div_w_template"], sampling["pn"], tuple((h, w) for _, h, w in cfg["scale_schedule"])
    )
    return dict(
        cfg=cfg,
        vae=ic.load_vae(vae),
        model=ic.load_transformer(transformer),
        text=ic.TextBatch(feats, torch.tensor([feats.shape[1]])),
        schedule=schedule,
        options=ic.SamplingOptions(sampling["cfg"], sampling["tau"], sampling["top_k"], sampling["top_p"]),
        seed=sampling["g_seed"],
    )


def _per_scale(name: str) -> list[np.ndarray]:
    data = np.load(FIXTURE / name)
    return [data[f"scale_{i:02d}"] for i in range(len(data.files))]


def _run(ref, keep=None) -> list[ic.ScaleStep]:
    gens = ic.generators([ref["seed"]])
    return list(ic.scales(ref["model"], ref["vae"], ref["text"], ref["schedule"], gens, ref["options"], keep=keep))


def _check_against(ref, steps: list[ic.ScaleStep], prefix: str) -> None:
    opts = ref["options"]
    want_bits = _per_scale(f"{prefix}_bits_per_scale.npz")
    want_logits = _per_scale(f"{prefix}_raw_logits_per_scale.npz")
    assert len(steps) == len(want_bits) == len(ref["schedule"].grids)
    for step, bits, raw in zip(steps, want_bits, want_logits, strict=True):
        np.testing.assert_allclose(step.raw_logits.numpy(), raw, atol=ATOL, rtol=0, err_msg=f"scale {step.index}")
        mixed = ic.sampling.mix_logits(torch.from_numpy(raw), 1, opts.cfg, opts.tau)[0]
        sure = ((mixed[:, 1] - mixed[:, 0]).abs() >= MARGIN).reshape(bits.shape).numpy()
        got = step.bits[0].numpy()
        assert sure.mean() > 0.99, "the fixture has too many near-ties to check bits"
        assert np.array_equal(got[sure], bits[sure]), f"scale {step.index}: {(got != bits)[sure].sum()} bits differ"
    codes = steps[-1].summed_codes
    np.testing.assert_allclose(codes.numpy(), np.load(FIXTURE / f"{prefix}_summed_codes.npy"), atol=ATOL, rtol=0)
    decoded = ic.decode(ref["vae"], codes)
    np.testing.assert_allclose(decoded.numpy(), np.load(FIXTURE / f"{prefix}_decoded_float.npy"), atol=ATOL, rtol=0)
    image = ic.to_uint8(decoded)[0].numpy().astype(int)
    png = np.asarray(Image.open(FIXTURE / f"{prefix}_image.png").convert("RGB")).astype(int)
    assert np.abs(image - png).max() <= 1


def test_generation_matches_upstream(ref):
    _check_against(ref, _run(ref), "gen")


def test_encoding_matches_upstream(ref):
    picture = torch.from_numpy(np.load(FIXTURE / "gen_decoded_float.npy"))
    bits = ref["vae"].encode_bits(picture, ref["schedule"])
    for i, (got, want) in enumerate(zip(bits, _per_scale("enc_bits_per_scale.npz"), strict=True)):
        assert got.shape == (1, *want.shape) and got.dtype == torch.int64
        assert np.array_equal(got[0].numpy(), want), f"scale {i}: {(got[0].numpy() != want).sum()} bits differ"


def test_teacher_forced_run_matches_upstream(ref):
    """Upstream's gt_leak (whole early scales forced to the encoded bits) through the keep hook."""
    leak = ref["cfg"]["teacher_forcing"]["gt_leak"]
    source = [torch.from_numpy(b)[None].long() for b in _per_scale("enc_bits_per_scale.npz")]
    seen = []

    def keep(index: int, sampled: torch.Tensor) -> torch.Tensor:
        seen.append((index, tuple(sampled.shape)))
        return source[index] if index < leak else sampled

    steps = _run(ref, keep)
    assert seen == [(i, (1, h, w, ref["vae"].bits)) for i, (h, w) in enumerate(ref["schedule"].grids)]
    for i in range(leak):
        assert torch.equal(steps[i].bits, source[i])
    # the codes of the bits used, summed on their own, are what the run decoded (a source's reconstruction path)
    torch.testing.assert_close(ref["vae"].summed_codes([s.bits for s in steps]), steps[-1].summed_codes)
    _check_against(ref, steps, "tf")


def test_text_encoder_matches_upstream(tmp_path):
    """The folder's tokenizer gives the fixture's ids; T5 on the ids padded to 512 gives the fixture's rows."""
    cfg = json.loads((FIXTURE / "config.json").read_text())
    bundle = ic.load_folder(build_fixture_folder(tmp_path / "model", FIXTURE))
    ids, mask = bundle.text.tokenize([cfg["prompt"]])
    want_ids = np.load(FIXTURE / "prompt_token_ids.npy")
    assert ids.shape == mask.shape == (1, 512)
    assert ids[0, : len(want_ids)].tolist() == want_ids.tolist() and int(mask.sum()) == len(want_ids)
    text = bundle.text([cfg["prompt"]])
    np.testing.assert_allclose(text.features[0].numpy(), np.load(FIXTURE / "t5_last_hidden_state.npy"), atol=1e-5)
    assert text.lengths.tolist() == [len(want_ids)]


def test_seeded_rows_same_alone_and_in_a_batch(ref):
    """Per-row generators: a prompt's bits do not depend on the rows beside it (sampled, not greedy)."""
    opts = ic.SamplingOptions(cfg=ref["options"].cfg, tau=1.0, top_k=0, top_p=0.9)
    model, vae, schedule = ref["model"], ref["vae"], ref["schedule"]
    other = ic.TextBatch(torch.randn(1, 3, ref["text"].features.shape[-1]), torch.tensor([3]))
    L = ref["text"].features.shape[1]
    pair = ic.TextBatch(
        torch.cat((ref["text"].features, torch.nn.functional.pad(other.features, (0, 0, 0, L - 3)))),
        torch.tensor([L, 3]),
    )
    alone = list(ic.scales(model, vae, ref["text"], schedule, ic.generators([7]), opts))
    both = list(ic.scales(model, vae, pair, schedule, ic.generators([7, 8]), opts))
    for a, b in zip(alone, both, strict=True):
        assert torch.equal(a.bits[0], b.bits[0])
    assert not torch.equal(both[-1].bits[0], both[-1].bits[1])


def test_a_negative_prompt_takes_the_unconditional_rows_place(ref):
    """Upstream's negative prompt replaces the learned unconditional rows: given those rows, nothing changes."""
    model, vae, schedule, text = ref["model"], ref["vae"], ref["schedule"], ref["text"]
    plain = _run(ref)
    negative = ic.sampling.unconditional(model, text)
    steps = list(ic.scales(model, vae, text, schedule, ic.generators([ref["seed"]]), ref["options"], negative=negative))
    assert all(torch.equal(a.bits, b.bits) for a, b in zip(plain, steps, strict=True))
    other = ic.TextBatch(torch.randn(1, 3, text.features.shape[-1]), torch.tensor([3]))
    steps = list(ic.scales(model, vae, text, schedule, ic.generators([ref["seed"]]), ref["options"], negative=other))
    assert not torch.equal(steps[-1].bits, plain[-1].bits)
    no_cfg = ic.SamplingOptions(cfg=1.0, tau=1.0, top_k=1)
    steps = list(ic.scales(model, vae, text, schedule, ic.generators([0]), no_cfg))
    assert steps[0].raw_logits.shape[0] == 1  # no unconditional rows are run without guidance
    torch.testing.assert_close(steps[0].raw_logits[0], plain[0].raw_logits[0])
