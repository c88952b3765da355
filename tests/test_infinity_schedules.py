"""Infinity's dynamic-resolution schedules and RoPE positions, against the values upstream's tables give."""

from __future__ import annotations

import pytest
import torch

import infinity_core as ic
from infinity_core.schedules import rope_positions
from infinity_core.transformer import rope_tables


@pytest.mark.parametrize(
    "area, scales, tokens, side",
    [("0.06M", 7, 521, 256), ("0.25M", 10, 2521, 512), ("0.60M", 12, 6425, 768), ("1M", 13, 10521, 1024)],
)
def test_square_area_classes(area, scales, tokens, side):
    s = ic.schedule_for(1.0, area)
    assert (len(s.grids), s.tokens, s.pixels) == (scales, tokens, (side, side))
    assert ic.schedule_for_pixels(side, side) == s and ic.area_for_resolution(side) == area


def test_every_template_keeps_its_aspect_at_every_class():
    assert len(ic.TEMPLATES) == 15 and {0.5, 0.4, 0.333, 0.8, 0.75, 0.666, 0.571} <= set(ic.TEMPLATES)
    for template in ic.TEMPLATES:
        for area in ic.AREA_CLASSES:
            h, w = ic.schedule_for(template, area).last
            assert abs(h / w - template) < 0.01, (template, area)
    assert ic.nearest_template(1.3) == 1.333 and ic.nearest_template(0.1) == 0.333 and ic.nearest_template(9) == 3.0
    wide = ic.schedule_for(0.5, "1M")
    assert wide.grids == tuple((w, h) for h, w in ic.schedule_for(2.0, "1M").grids) and wide.pixels == (720, 1440)
    with pytest.raises(ValueError, match="Unknown area class"):
        ic.schedule_for(1.0, "2M")


def test_rope_positions_are_measured_on_the_1m_grid_rounding_half_to_even():
    square = ic.schedule_for(1.0, "0.06M")
    pos = rope_positions(square)
    offsets = square.offsets()
    assert pos.shape == (521, 2) and pos[0].tolist() == [0, 0]
    six = pos[offsets[3] : offsets[3] + 36].reshape(6, 6, 2)
    assert six[:, 0, 0].tolist() == [0, 11, 21, 32, 43, 53] and six[0, :, 1].tolist() == [0, 11, 21, 32, 43, 53]
    tall = ic.schedule_for(1.25, "0.25M")  # rope grid 70 x 56; scale (20, 16): rows i * 3.5
    assert tall.rope_grid == (70, 56)
    k = tall.grids.index((20, 16))
    rows = rope_positions(tall)[tall.offsets()[k] :: 16][:4, 0].tolist()
    assert rows == [0, 4, 7, 10]  # 3.5 -> 4 and 10.5 -> 10: ties to even


def test_rope_tables_turn_pairs_by_row_then_column():
    cos, sin = rope_tables(ic.schedule_for(1.0, "0.06M"), head_dim=8, device="cpu")
    assert cos.shape == sin.shape == (521, 8)  # each pair's angle at its two columns, the sine negated at the first
    # token 2 of scale (2, 2) sits at (0, 32): pairs 0-1 (rows) unturned, pairs 2-3 turned by 32 * freq
    angles = torch.tensor([0.0, 0.0, 32.0, 32 / 100])
    torch.testing.assert_close(cos[1 + 1], angles.cos().repeat_interleave(2))
    torch.testing.assert_close(sin[1 + 1], torch.stack((-angles.sin(), angles.sin()), -1).flatten())
