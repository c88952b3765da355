"""Tiny Infinity model folders for tests and benches, made offline.

`build_fixture_folder` turns the upstream reference fixture (`tests/data/infinity_tiny`: random
weights and what upstream computed with them) into a model folder that `load_folder` reads, with a
word-level tokenizer that maps each word as the fixture's synthetic ids do (3 + crc32(word) mod
(vocab - 3), then EOS). `build_random_folder` makes a folder of random weights at any small width,
in the published file layouts.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import torch

from .loading import transformer_keys_to_upstream
from .schedules import VAE_STRIDE
from .transformer import Infinity
from .vae import BSQVAE

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "infinity_tiny"
PAD, EOS, UNK = 0, 1, 2
# Words the test tokenizer knows besides the fixture prompt's; any other word reads as <unk>.
WORDS = (
    "a an the of on in at with and or to red green blue yellow white black small big calm dark bright "
    "boat lake fox cat dog house tree sky sea mountain flower car bird sun moon city forest river road "
    "picture photo painting of over under next by snow rain night day"
).split()


def word_id(word: str, vocab_size: int) -> int:
    """The fixture's synthetic token id of a word."""
    return 3 + zlib.crc32(word.encode()) % (vocab_size - 3)


def write_tokenizer(folder: str | Path, words: list[str], vocab_size: int) -> None:
    """A word-level tokenizer (split on whitespace, EOS appended, pad 0) saved with `save_pretrained`;
    earlier words win an id two words share."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": PAD, "</s>": EOS, "<unk>": UNK}
    taken = set(vocab.values())
    for word in words:  # a word whose id is taken reads as <unk>: the saved vocabulary holds one word per id
        if word not in vocab and word_id(word, vocab_size) not in taken:
            vocab[word] = word_id(word, vocab_size)
            taken.add(vocab[word])
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )
    fast.save_pretrained(str(folder))


def write_text_encoder(folder: str | Path, t5_config: dict, state: dict | None, words: list[str], seed: int = 0):
    """A `T5EncoderModel` of `t5_config` (the fixture's weights, or random ones) and a tokenizer, in `folder`."""
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    model = T5EncoderModel(T5Config(**t5_config)).eval()
    if state is not None:
        model.load_state_dict(state)
    model.save_pretrained(str(folder))
    write_tokenizer(folder, words, t5_config["vocab_size"])


def _model_json(folder: Path, resolution: int) -> None:
    (folder / "model.json").write_text(json.dumps({"family": "infinity", "resolution": resolution}))


def build_fixture_folder(out: str | Path, fixture: str | Path = FIXTURE) -> Path:
    """A model folder from the reference fixture's weights: model.json, infinity_*.safetensors,
    vae_*.safetensors and text_encoder/ (the tiny T5 and a tokenizer giving the fixture's prompt ids)."""
    from safetensors.torch import load_file, save_file

    fixture, out = Path(fixture), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((fixture / "config.json").read_text())
    [infinity] = fixture.glob("infinity*.safetensors")
    [vae] = fixture.glob("vae*.safetensors")
    save_file(load_file(str(infinity)), str(out / "infinity_tiny.safetensors"))
    save_file(load_file(str(vae)), str(out / "vae_tiny.safetensors"))
    [t5] = fixture.glob("t5*.safetensors")
    words = [*config["prompt"].split(), *WORDS]
    write_text_encoder(out / "text_encoder", config["t5"], load_file(str(t5)), words)
    _model_json(out, config["scale_schedule"][-1][1] * VAE_STRIDE)
    return out


def randomize(model: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Fill every parameter with seeded random values (buffers such as zero_k_bias stay as built)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


# A small flan-T5-like encoder (gated GELU, like flan-T5's), 32 wide as `tiny_transformer` reads text.
TINY_T5 = dict(vocab_size=512, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2, feed_forward_proj="gated-gelu",
               dropout_rate=0.0, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD)  # fmt: skip


def tiny_transformer(width: int = 64, depth: int = 2, heads: int = 2, bits: int = 16, text: int = 32) -> Infinity:
    """A small random Infinity (pool heads as upstream: text width / 128, at least 1)."""
    pool = max(1, text // 128)
    model = Infinity(depth, width, heads, 4 * width, text, bits, pool, text_maxlen=512)
    return randomize(model, seed=1).eval()


def tiny_vae(bits: int = 16, ch: int = 32) -> BSQVAE:
    return randomize(BSQVAE(bits=bits, ch=ch, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1), seed=2, std=0.1).eval()


def vae_state_plain(vae: BSQVAE) -> dict[str, torch.Tensor]:
    """The VAE's state dict with plain layer names (`conv1.weight`, no `.conv.`/`.norm.` wrapper)."""
    return {k.replace(".conv.weight", ".weight").replace(".conv.bias", ".bias").replace(".norm.", "."): v
            for k, v in vae.state_dict().items()}  # fmt: skip


def build_random_folder(
    out: str | Path, layout: str = "safetensors", width: int = 64, depth: int = 2, chunks: int = 2, text: int = 32
) -> Path:
    """A folder of random weights in a published layout: layout "pth" writes `infinity_*.pth` (a plain
    state dict, blocks in `chunks` chunks) and `vae_*.pth` (`{"vae": state_dict}`, plain layer names);
    "safetensors" writes both as .safetensors with the modules' own names."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, vae = tiny_transformer(width, depth, text=text), tiny_vae()
    state = transformer_keys_to_upstream(model.state_dict(), chunks)
    if layout == "pth":
        torch.save(state, out / "infinity_random.pth")
        torch.save({"vae": vae_state_plain(vae)}, out / "vae_random.pth")
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(out / "infinity_random.safetensors"))
        save_file(vae.state_dict(), str(out / "vae_random.safetensors"))
    write_text_encoder(out / "text_encoder", {**TINY_T5, "d_model": text}, None, list(WORDS))
    _model_json(out, 256)
    return out
