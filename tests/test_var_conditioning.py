"""VAR.condition_labels remembers the conditioning of recent label batches: the same numbers as computing it, made
again when a conditioning weight changes, never kept while training, and bounded."""

from __future__ import annotations

import torch

import var_core
from var_core.transformer import REMEMBERED_ROWS


def _var() -> var_core.VAR:
    torch.manual_seed(0)
    return var_core.VAR(depth=2, embed_dim=64, num_heads=2, num_classes=10, patch_nums=(1, 2, 3)).eval()


def _same(a: var_core.transformer.Conditioning, b: var_core.transformer.Conditioning) -> bool:
    return torch.equal(a.head, b.head) and all(torch.equal(x, y) for x, y in zip(a.blocks, b.blocks, strict=True))


def test_remembered_conditioning_is_the_computed_one_and_follows_the_weights():
    var = _var()
    labels = torch.tensor([3, 10])
    with torch.no_grad():
        cond, first = var.condition_labels(labels)
        assert torch.equal(cond, var.class_emb(labels)) and _same(first, var.condition(cond))
        assert var.condition_labels(labels)[1] is first  # remembered
        var.blocks[1].ada_lin[1].weight.mul_(2)  # a weight changed in place (as an optimiser step does)
        changed = var.condition_labels(labels)[1]
        assert changed is not first and _same(changed, var.condition(cond))
        assert not torch.equal(changed.blocks[1], first.blocks[1])


def test_nothing_is_remembered_with_gradients_and_the_memory_is_bounded():
    var = _var()
    labels = torch.tensor([1])
    assert var.condition_labels(labels)[1] is not var.condition_labels(labels)[1]
    assert "_conditioning" not in var.__dict__
    with torch.no_grad():
        for c in range(10):
            var.condition_labels(torch.tensor([c, 10]))
        var.condition_labels(torch.arange(REMEMBERED_ROWS + 1) % 10)  # too many rows to keep
    remembered = var.__dict__["_conditioning"]
    assert sum(len(key[0]) for key in remembered) <= REMEMBERED_ROWS
    assert [key[0] for key in remembered][-1] == (9, 10)
