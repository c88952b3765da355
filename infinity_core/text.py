"""The text encoder: flan-T5's encoder through transformers, used as upstream does.

Prompts are tokenised padded to 512 tokens with an attention mask (longer ones truncated), run
through `T5EncoderModel`, and only each prompt's own rows (its tokens and EOS) are kept. The padding
past the longest prompt is not run: masked out of every attention, it changes no kept row (beyond
float rounding), and a 12-token prompt costs 1/40 of the 512 positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_TOKENS = 512


@dataclass
class TextBatch:
    """features: (B, L, Ct) float32 T5 rows, zero past each prompt's length; lengths: (B,) int64 tokens per prompt."""

    features: torch.Tensor
    lengths: torch.Tensor

    def to(self, device: torch.device | str) -> TextBatch:
        return TextBatch(self.features.to(device), self.lengths.to(device))


class TextEncoder:
    """A tokenizer and a `T5EncoderModel` (or any model returning `last_hidden_state`) as one callable."""

    def __init__(self, tokenizer, model: torch.nn.Module, max_tokens: int = MAX_TOKENS):
        self.tokenizer, self.model, self.max_tokens = tokenizer, model, max_tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (ids, mask), each (B, 512) int64."""
        tokens = self.tokenizer(
            list(prompts), max_length=self.max_tokens, padding="max_length", truncation=True, return_tensors="pt"
        )
        return tokens.input_ids, tokens.attention_mask

    @torch.no_grad()
    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> TextBatch:
        """(B, 512) ids and mask -> each prompt's T5 rows, float32, padded to the longest prompt."""
        lengths = mask.sum(dim=-1)
        L = int(lengths.max())
        ids, mask = ids[:, :L].to(self.device), mask[:, :L].to(self.device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        lengths = lengths.to(self.device)
        keep = torch.arange(L, device=hidden.device)[None, :, None] < lengths[:, None, None]
        return TextBatch(torch.where(keep, hidden, torch.zeros((), device=hidden.device)), lengths.long())

    def __call__(self, prompts: list[str]) -> TextBatch:
        """B prompts -> their T5 rows (B, L, Ct) and lengths (B,)."""
        return self.encode_ids(*self.tokenize(prompts))
