"""The published checkpoints: names, sizes, where their files are, and fetching them on first use.

A published model is files of one or more hub repositories (VAR's: `FoundationVision/var`; Infinity's:
`FoundationVision/Infinity` and `google/flan-t5-xl`). A file is looked up in the models folder
($VAR_MODELS_DIR, default ./models; at `HubFile.local`), then in the Hugging Face cache, and downloaded
into that cache only when asked, through `huggingface_hub` (its cache, its retries and resume within a
download, `HF_ENDPOINT`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`). Offline (`HF_HUB_OFFLINE=1` or offline=True)
nothing touches the network and a missing file ends in a sentence that says which file to put where.
A model whose files name their place in a model folder (Infinity's) is loaded from a folder of links to
them (`model_folder`, in `var-edit-folders/` of the Hugging Face cache): the files stay where they are.

Every published file is checked against its sha256 before it is loaded: the hash pinned in `SHA256`
below, else the one the hub announced for it at the commit pinned in `REVISION` (X-Linked-Etag, the LFS
object's sha256, which also names the file in the Hugging Face cache). VAR_EDIT_UNPINNED=1 drops the pins,
for a private hub that serves other files under the published names. A download that does not match is
deleted and fetched once more; a second mismatch ends in one sentence, and nothing damaged or cut short stays
in the cache. A file that matched is remembered by size and time (var-edit-verified.json in the cache), so it is
hashed once, not at every load.

    catalog()                    -> every published model, its files, their sizes, which are here
    model_card("d16", ask_hub=True)  the same for one model, sizes of missing files from the hub
    fetch("d16", progress=cb)    -> the paths of its files (VAR: VQVAE, VAR), downloading what is missing
    zoo_files("d16", download)   -> the same, downloading only when download=True
    model_folder("infinity-125m") -> the model folder of links to its files (for models with a folder layout)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .loading import CheckpointError

HF_REPO = "FoundationVision/var"
INFINITY_REPO = "FoundationVision/Infinity"
T5_REPO = "google/flan-t5-xl"
VQVAE_FILE = "vae_ch160v4096z32.pth"


@dataclass(frozen=True)
class HubFile:
    """A published file: `filename` in hub repository `repo`; `local`, where it is looked for in the models folder
    (and its key in the tables below); `place`, its path in the model's folder (None: loaded by its path, VAR)."""

    repo: str
    filename: str
    place: str | None = None
    local: str = ""

    def __post_init__(self) -> None:
        if not self.local:
            object.__setattr__(self, "local", self.filename)

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.repo}"


def _t5(filename: str, place: str = "") -> HubFile:
    """A file of flan-T5-XL, in `models/flan-t5-xl/` as `huggingface-cli download --local-dir` puts it."""
    return HubFile(T5_REPO, filename, f"text_encoder/{place or filename}", f"flan-t5-xl/{filename}")


# Infinity's text encoder: flan-T5-XL's encoder and tokenizer, not its decoder. Its weights are two safetensors
# shards written in state-dict order (shared embedding, encoder, decoder, lm_head); the first (about 9.45 GB)
# is larger than the shared embedding and encoder together (1.29 B parameters, 5.16 GB in float32), so it holds
# the whole encoder (and part of the decoder, unused); the second (about 1.95 GB, decoder only) is not fetched.
# It is linked as text_encoder/model.safetensors, and loading refuses in one sentence if an encoder weight is
# missing from it. The tokenizer is the fast one (tokenizer.json); the SentencePiece model is not needed.
T5_FILES = (
    _t5("config.json"),
    _t5("model-00001-of-00002.safetensors", "model.safetensors"),
    _t5("tokenizer.json"),
    _t5("tokenizer_config.json"),
)

# Bytes of the published files, for when the hub cannot be asked: the hub's LFS records of the pinned VAR files;
# d30's (whose current file is not recorded anywhere found) from its float32 tensors (tests/fixtures/keys) plus
# pickle framing; Infinity's from the sizes its hub listing gives (8.82 GB, 501 MB) or, for the VAEs, from their
# float32 element counts; flan-T5-XL's from its hub listing, rounded. All but the pinned VAR files are
# estimates: the hub's own figure replaces these whenever it answers.
KNOWN_SIZES = {
    VQVAE_FILE: 436_075_834,
    "var_d16.pth": 1_243_116_346,
    "var_d20.pth": 2_405_720_018,
    "var_d24.pth": 4_135_702_618,
    "var_d30.pth": 8_042_300_000,
    "var_d36.pth": 9_436_153_085,
    "infinity_2b_reg.pth": 8_820_000_000,
    "infinity_vae_d32reg.pth": 440_500_000,
    "infinity_125M_256x256.pth": 501_000_000,
    "infinity_vae_d16.pth": 440_000_000,
    "flan-t5-xl/config.json": 1_440,
    "flan-t5-xl/model-00001-of-00002.safetensors": 9_450_000_000,
    "flan-t5-xl/tokenizer.json": 2_420_000,
    "flan-t5-xl/tokenizer_config.json": 2_540,
}

# The hub's sha256 of each published file (its LFS object id, shown as "SHA256" on the file's page at
# https://huggingface.co/FoundationVision/var). None: pinned by hub revision instead (REVISION). The VQVAE's
# is its git-lfs pointer's oid, recorded by two projects that verify their downloads; the others are the
# hub's LFS records of the files. No hash of an Infinity or flan-T5-XL file is known here: those are pinned
# by revision, never by a guessed hash.
SHA256: dict[str, str | None] = {
    VQVAE_FILE: "7c3ec27ae28a3f87055e83211ea8cc8558bd1985d7b51742d074fb4c2fcf186c",
    "var_d16.pth": "4f6151aad91c94e03e224dd7358d8389fa05301c0c291279566998efb54b0ecb",
    "var_d20.pth": "f7d232978e6fe82a4f2e0f5d82b012e01b1aa5abfe93ce2b56104ec0e878a10f",
    "var_d24.pth": "1f5fa9cfec7be1c60034511eeacde06e24892f416d3d1e5fd227fdac56293dfc",
    "var_d30.pth": None,
    "var_d36.pth": "660201c829c6f7b775b9119867c12c11aaa68c72770dc33653eec1fa67e27d4d",
}
# Files pinned by the hub commit they are fetched from (a commit names fixed content; the hash the hub
# announces at that commit is then checked, where it announces one: files it keeps in git rather than LFS,
# the small JSON files, have none, and the commit alone fixes them). d30's file was replaced on the hub on
# 2024-04-14 and its current hash is recorded nowhere found (the earlier one, bd66c170..., must never be
# pinned); the commit that holds it could not be read offline either, and neither could a commit of
# Infinity's or flan-T5-XL's repository, so none is in the code: each repository's commit comes from its
# variable in REVISION_ENVS (docs/models.md). Put a commit here once one is read from the hub.
REVISION: dict[str, str | None] = {
    "var_d30.pth": None,
    **dict.fromkeys(("infinity_2b_reg.pth", "infinity_vae_d32reg.pth", "infinity_125M_256x256.pth")),
    **dict.fromkeys(("infinity_vae_d16.pth", *(f.local for f in T5_FILES))),
}
REVISION_ENV = "VAR_EDIT_HUB_REVISION"
REVISION_ENVS = {
    HF_REPO: REVISION_ENV,
    INFINITY_REPO: "VAR_EDIT_INFINITY_REVISION",
    T5_REPO: "VAR_EDIT_FLAN_T5_REVISION",
}
UNPINNED = os.environ.get("VAR_EDIT_UNPINNED") == "1"
if UNPINNED:  # a private hub (or a test's stand-in) serving other files
    SHA256 = dict.fromkeys(SHA256)
HUB_TIMEOUT = 5.0  # seconds for the hub to answer a HEAD; no answer means no network, said at once
STEPS = 400  # progress reports per downloaded file, at least (smaller network reads for small files)
log = logging.getLogger("var-core-zoo")

# (filename, bytes done, bytes in all or None): called as a download goes, from 0 to the size.
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class ZooEntry:
    """A published model: `title`, what an Editor of it is called; `family`, the editing family that loads it;
    `parameters`, of the transformer (from the published key table, or its architecture), `width` its channels,
    `tokens` the token positions of one picture (all scales); `vae_parameters` and `text_parameters`, of its
    tokenizer and text encoder (0: none)."""

    name: str
    title: str
    family: str
    files: tuple[HubFile, ...]
    depth: int
    image_size: int
    parameters: int
    width: int
    tokens: int
    vae_parameters: int
    text_parameters: int = 0

    @property
    def in_folder(self) -> bool:
        """Loaded from a model folder of links to its files (`model_folder`), not from their paths."""
        return all(f.place is not None for f in self.files)


VQVAE_PARAMETERS = 108_948_355  # built on the meta device
T5_ENCODER_PARAMETERS = 1_289_325_568  # flan-T5-XL's encoder (INFINITY_SPEC, section 1)


def _var(depth: int, image_size: int, parameters: int) -> ZooEntry:
    files = (HubFile(HF_REPO, VQVAE_FILE), HubFile(HF_REPO, f"var_d{depth}.pth"))
    tokens = 680 if image_size == 256 else 2240  # the sums of squares of the 10 (256 px) or 13 (512 px) scale sides
    return ZooEntry(
        f"d{depth}", f"VAR-d{depth}", "var-class", files, depth, image_size, parameters, 64 * depth, tokens,
        VQVAE_PARAMETERS,
    )  # fmt: skip


def _infinity(
    name: str,
    title: str,
    transformer: str,
    vae: str,
    shape: tuple[int, int, int, int],
    parameters: int,
    vae_params: int,
) -> ZooEntry:
    """shape: (depth, width, picture side, token positions at that side)."""
    # The VAE is linked as vae_*: the folder tells its two weight files apart by name (infinity*, vae*).
    files = (
        HubFile(INFINITY_REPO, transformer, transformer),
        HubFile(INFINITY_REPO, vae, vae.removeprefix("infinity_")),
        *T5_FILES,
    )
    depth, width, side, tokens = shape
    return ZooEntry(
        name, title, "infinity", files, depth, side, parameters, width, tokens, vae_params, T5_ENCODER_PARAMETERS
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a published model needs, estimated from parameter counts times bytes per parameter (not measured):
    `gpu`, on CUDA (the transformer and text encoder in 16 bits, the VAE in float32, the KV cache of one picture
    with CFG in 16 bits); `cpu`, the same all in float32. Activations (most: the VAE decoder) come on top."""

    gpu: int
    cpu: int


def memory_estimate(name: str) -> MemoryEstimate:
    """What a published model needs in memory on a GPU and on a CPU (an estimate: see MemoryEstimate)."""
    e = _entry(name)
    kv = e.tokens * e.width * e.depth * 2 * 2  # K and V of every token, every layer, conditional and CFG rows
    gpu = 2 * (e.parameters + e.text_parameters + kv) + 4 * e.vae_parameters
    return MemoryEstimate(gpu, 4 * (e.parameters + e.text_parameters + e.vae_parameters + kv))


ZOO = {
    e.name: e
    for e in (
        _var(16, 256, 310_762_984),
        _var(20, 256, 601_405_816),
        _var(24, 256, 1_033_899_304),
        _var(30, 256, 2_010_541_036),
        _var(36, 512, 2_358_996_688),
        # 2B: the architecture's parameter count (INFINITY_SPEC section 1), its VAE the d32 one with registers;
        # 10,521 token positions at 1024 px (1:1, the 1M class).
        _infinity(
            "infinity-2b",
            "Infinity-2B",
            "infinity_2b_reg.pth",
            "infinity_vae_d32reg.pth",
            (32, 2048, 1024, 10_521),
            2_204_564_032,
            110_118_051,
        ),
        # 125M (config infinity_layer12: depth 12, width 768, 8 heads; 125,148,800 parameters with 2048-wide
        # text, 500.6 MB in float32, the 501 MB the hub lists). Which VAE it pairs with is not in the spec read
        # for this project, and that config fixes no bit count (it takes the VAE's). Public inference and
        # fine-tuning scripts that run this file with infinity_layer12 pass `--vae_type 16` and
        # `infinity_vae_d16.pth`, so the 16-bit VAE is fetched; a wrong pair would be refused in one sentence
        # at load (the transformer's word_embed reads as many bits as the VAE makes, checked by load_folder).
        _infinity(
            "infinity-125m",
            "Infinity-125M",
            "infinity_125M_256x256.pth",
            "infinity_vae_d16.pth",
            (12, 768, 256, 521),
            125_148_800,
            109_970_579,
        ),
    )
}
HUB_FILES = {f.local: f for entry in ZOO.values() for f in entry.files}  # every published file by its key


@dataclass(frozen=True)
class FileStatus:
    """One published file: its size in bytes (`exact`: of the file here or from the hub, else the table's)
    and where it is on this machine (None: absent)."""

    filename: str
    size: int
    exact: bool
    path: Path | None
    sha256: str | None = None  # what it must hash to: pinned, else as the hub announced it (None: unknown)

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class ModelCard:
    """A published model and the state of its two files on this machine."""

    name: str
    depth: int
    resolution: int
    parameters: int
    files: tuple[FileStatus, ...]  # as the entry lists them (VAR: VQVAE, VAR)

    @property
    def present(self) -> bool:
        """Both files are on this machine: loading needs no network."""
        return all(f.present for f in self.files)

    @property
    def missing(self) -> list[FileStatus]:
        return [f for f in self.files if not f.present]

    @property
    def download_bytes(self) -> int:
        """What fetching would download."""
        return sum(f.size for f in self.missing)


# ---- where things are ---------------------------------------------------------------------------
def models_dir() -> Path:
    """The models folder: $VAR_MODELS_DIR, else ./models."""
    return Path(os.environ.get("VAR_MODELS_DIR") or "models")


def models_dir_label() -> str:
    """The models folder as the user configured it, for messages (never resolved to a full path)."""
    configured = os.environ.get("VAR_MODELS_DIR")
    return configured.rstrip("/") + "/" if configured else "models/"


def is_offline(offline: bool | None = None) -> bool:
    """offline when given, else whether `HF_HUB_OFFLINE` is set (read now, and as huggingface_hub read it)."""
    if offline is not None:
        return offline
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    hub = _hub()
    return bool(hub is not None and hub.constants.HF_HUB_OFFLINE)


def _hub() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants  # a lazy attribute of the package until imported
    except ImportError:
        return None
    return huggingface_hub


def local_file(filename: str) -> Path | None:
    """A published file by its key (`HubFile.local`) on this machine (models folder, then the Hugging Face cache),
    without the network."""
    local = models_dir() / filename
    if local.is_file():
        return local
    hub = _hub()
    if hub is None:
        return None
    where = HUB_FILES[filename]
    revision = hub_revision(filename, required=False)
    cached = hub.try_to_load_from_cache(where.repo, where.filename, revision=revision)
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached)
    if filename in REVISION and revision is None:  # fetched at a commit no longer set: the newest such copy
        folder = Path(hub.constants.HF_HUB_CACHE) / f"models--{where.repo.replace('/', '--')}" / "snapshots"
        found = [p for p in folder.glob(f"*/{where.filename}") if p.is_file()]
        return max(found, key=lambda p: p.parent.stat().st_mtime) if found else None
    return None


def remote_file(filename: str, timeout: float = HUB_TIMEOUT) -> tuple[int | None, str | None]:
    """(size, sha256) as the hub announces them (one HEAD request, no retries); raises when the hub does not answer."""
    hub = _hub()
    where = HUB_FILES[filename]
    url = hub.hf_hub_url(where.repo, where.filename, revision=hub_revision(filename, required=False))
    meta = hub.get_hf_file_metadata(url, timeout=timeout)
    etag = (meta.etag or "").strip('"').lower()
    return meta.size, etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None


def hub_revision(filename: str, required: bool = True) -> str | None:
    """The hub commit a file pinned by revision is fetched from (REVISION, else its repository's variable in
    REVISION_ENVS); None for the others (the hub's main, checked against the pinned hash). required: raise when a
    file pinned by revision has none (unless VAR_EDIT_UNPINNED=1)."""
    if filename not in REVISION:
        return None
    repo = HUB_FILES[filename].repo
    env = REVISION_ENVS[repo]
    revision = REVISION[filename] or os.environ.get(env, "").strip().lower()
    if revision and not re.fullmatch(r"[0-9a-f]{40}", revision):
        raise CheckpointError(f"{env} must be a commit of {repo} (40 hex digits), not {revision[:60]!r}.")
    if not revision and required and not UNPINNED:
        raise CheckpointError(
            f"{filename} is pinned by hub revision and none is set: set {env} to the commit of "
            f"{repo} to fetch it from (40 hex digits, from https://huggingface.co/{repo}/commits/main), or put the "
            f"file in {models_dir_label()}."
        )
    return revision or None


def _ask_hub(filename: str) -> tuple[int | None, str | None]:
    """remote_file, or (None, None) offline or when the hub does not answer (the table answers instead)."""
    if _hub() is None or is_offline():
        return None, None
    try:
        return remote_file(filename)
    except Exception:  # any failure means "unknown"
        return None, None


# ---- checking them ------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 8 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(8 << 20):
            digest.update(piece)
    return digest.hexdigest()


def _expected(filename: str, path: Path | None, announced: str | None = None) -> str | None:
    """The sha256 a file must have: pinned, else announced by the hub, else its Hugging Face cache name."""
    if SHA256.get(filename):
        return SHA256[filename]
    if announced:
        return announced
    if path is not None and path.is_symlink():
        blob = path.resolve().name
        return blob if re.fullmatch(r"[0-9a-f]{64}", blob) else None
    return None


def _stamps_file() -> Path | None:
    hub = _hub()
    return Path(hub.constants.HF_HUB_CACHE) / "var-edit-verified.json" if hub is not None else None


def _stamp_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _stamps() -> dict[str, str]:
    where = _stamps_file()
    try:
        return json.loads(where.read_text()) if where is not None and where.is_file() else {}
    except (OSError, ValueError):
        return {}


def _remember(path: Path, sha: str) -> None:
    where = _stamps_file()
    if where is None:
        return
    stamps = {k: v for k, v in _stamps().items() if Path(k.split("|", 1)[0]).exists()}
    stamps[_stamp_key(path)] = sha
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = where.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stamps, indent=0))
        tmp.replace(where)
    except OSError:  # a read-only cache: the file is hashed again next time
        pass


def intact(path: Path, sha: str | None) -> bool:
    """Whether the file hashes to `sha` (remembered once it did); True when no hash is known."""
    if sha is None:
        return True
    if _stamps().get(_stamp_key(path)) == sha:
        return True
    if file_sha256(path) != sha:
        return False
    _remember(path, sha)
    return True


def _in_cache(path: Path) -> bool:
    hub = _hub()
    if hub is None:
        return False
    cache = Path(hub.constants.HF_HUB_CACHE).resolve()
    return cache in path.parent.resolve().parents


def _remove(path: Path) -> None:
    """A cached file: its snapshot link and the blob it points to."""
    blob = path.resolve()
    for p in (path, blob):
        p.unlink(missing_ok=True)


def _checked(card: ModelCard) -> ModelCard:
    """The card with every present file checked against its sha256: a damaged file in the cache is removed
    (and so missing); a damaged one in the models folder ends in one sentence."""
    files = []
    for f in card.files:
        sha = _expected(f.filename, f.path)
        if f.path is None or intact(f.path, sha):
            files.append(FileStatus(f.filename, f.size, f.exact, f.path, sha))
            continue
        if not _in_cache(f.path):
            raise CheckpointError(
                f"{f.filename} in {models_dir_label()} is damaged (its sha256 is not the published one); "
                f"replace it with the file from {HUB_FILES[f.filename].page}."
            )
        log.warning("%s in the Hugging Face cache was damaged (sha256 mismatch); removed", f.filename)
        _remove(f.path)
        files.append(FileStatus(f.filename, KNOWN_SIZES[f.filename], False, None, sha))
    return ModelCard(card.name, card.depth, card.resolution, card.parameters, tuple(files))


# ---- what there is ------------------------------------------------------------------------------
def _entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise CheckpointError(f"Unknown model {name!r}; the published ones are {', '.join(ZOO)}.")
    return ZOO[name]


def model_card(name: str, ask_hub: bool = False) -> ModelCard:
    """One published model: its files, their sizes and which are here.

    ask_hub: take the sizes of missing files from the hub (a HEAD request each; skipped offline).
    """
    entry = _entry(name)
    files = []
    for filename in (f.local for f in entry.files):
        path = local_file(filename)
        size, sha = (
            (path.stat().st_size, None) if path is not None else (_ask_hub(filename) if ask_hub else (None, None))
        )
        files.append(
            FileStatus(filename, size or KNOWN_SIZES[filename], size is not None, path, _expected(filename, path, sha))
        )
    return ModelCard(entry.name, entry.depth, entry.image_size, entry.parameters, tuple(files))


def catalog(ask_hub: bool = False) -> list[ModelCard]:
    """Every published model (d16 ... d36, infinity-2b, infinity-125m) with its files, sizes and presence; no network
    unless ask_hub."""
    return [model_card(name, ask_hub) for name in ZOO]


def available(name: str) -> bool:
    """Whether every file of a published model is on this machine (no network); False for unknown names."""
    return name in ZOO and all(local_file(f.local) is not None for f in ZOO[name].files)


def format_size(n: float) -> str:
    """Bytes as people read them: 436 MB, 1.24 GB."""
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{n / 1e3:.0f} kB"


# ---- getting them -------------------------------------------------------------------------------
def _missing_message(card: ModelCard, reason: str) -> str:
    """'X is not on this machine: put it in models/ (from <page>, size)' + reason; names no server paths."""
    first, *rest = [f.filename for f in card.missing]
    size, label = format_size(card.download_bytes), models_dir_label()
    pages = " and ".join(dict.fromkeys(HUB_FILES[f.filename].page for f in card.missing))
    if len(rest) == 1:
        return (
            f"{first} is not on this machine: put it in {label} with {rest[0]}, which is missing too "
            f"(both from {pages}, {size}){reason}"
        )
    if rest:
        return (
            f"{first} is not on this machine: put it in {label} with the {len(rest)} other missing files "
            f"(from {pages}, {size}){reason}"
        )
    return f"{first} is not on this machine: put it in {label} (from {pages}, {size}){reason}"


def _paths(card: ModelCard) -> tuple[Path, ...]:
    return tuple(f.path for f in card.files)  # type: ignore[misc]


def zoo_files(name: str, download: bool = False) -> tuple[Path, ...]:
    """The paths of a published model's files (d16: VQVAE, VAR); downloads only when download=True."""
    if download:
        return fetch(name)
    card = _checked(model_card(name))
    if not card.present:
        hint = f" or allow downloading (download=True, or python -m var_core fetch {name})."
        raise CheckpointError(_missing_message(card, hint))
    return _paths(card)


def fetch(name: str, offline: bool | None = None, progress: Progress | None = None) -> tuple[Path, ...]:
    """The paths of a published model's files (d16: VQVAE, VAR), downloading what is missing into the Hugging Face
    cache.

    Files already here (models folder or cache) are used without asking the network. Before a
    download starts its size is said: on the terminal (stderr, with a progress bar) when progress
    is None, else through progress(filename, 0, size) and then progress(filename, done, size); an
    exception raised by progress stops the download and is passed on as it is (a way to cancel).
    offline: True never touches the network (None: `HF_HUB_OFFLINE` decides).
    """
    card = _checked(model_card(name))
    if card.present:
        return _paths(card)
    if is_offline(offline):
        why = "offline=True" if offline else "HF_HUB_OFFLINE is set"
        raise CheckpointError(_missing_message(card, f"; downloads are off ({why})."))
    hub = _hub()
    if hub is None:
        raise CheckpointError(_missing_message(card, ", or install huggingface_hub to download it."))
    card = _reach_hub(card)
    _check_disk(card, hub)
    if progress is None:
        parts = ", ".join(f"{f.filename} ({format_size(f.size)})" for f in card.missing)
        repos = " and ".join(
            dict.fromkeys(f"{hub.constants.ENDPOINT}/{HUB_FILES[f.filename].repo}" for f in card.missing)
        )
        print(
            f"Downloading {name}: {parts} from {repos} into the Hugging Face cache (once; later loads find it there).",
            file=sys.stderr,
            flush=True,
        )
    paths = [f.path or _download_verified(hub, f, progress) for f in card.files]
    return tuple(paths)


def model_folder(
    name: str, download: bool = False, offline: bool | None = None, progress: Progress | None = None
) -> Path:
    """A published model with a folder layout (`ZooEntry.in_folder`: Infinity's) as a model folder: its model.json
    and a link to each file at the entry's place, in `var-edit-folders/<name>` of the Hugging Face cache, made
    again at every call (the files stay where they were found); download and offline as `fetch`."""
    entry = _entry(name)
    if not entry.in_folder:
        raise ValueError(f"{name} is loaded from its files' paths, not from a model folder.")
    paths = fetch(name, offline, progress) if download else zoo_files(name)
    folder = folders_root() / name
    try:
        for f, path in zip(entry.files, paths, strict=True):
            _link(folder / str(f.place), path)
        spec = json.dumps({"family": entry.family, "resolution": entry.image_size})
        if not (folder / "model.json").is_file() or (folder / "model.json").read_text() != spec:
            tmp = folder / f"model.json.{os.getpid()}.tmp"
            tmp.write_text(spec)
            tmp.replace(folder / "model.json")
    except OSError as e:
        raise CheckpointError(
            f"The model folder of {name} cannot be made in the Hugging Face cache ({e.strerror or e}); "
            "make HF_HUB_CACHE writable."
        ) from e
    return folder


def folders_root() -> Path:
    """Where `model_folder` makes the published models' folders: `var-edit-folders` in the Hugging Face cache."""
    hub = _hub()
    cache = Path(hub.constants.HF_HUB_CACHE) if hub is not None else models_dir() / ".cache"
    return cache / "var-edit-folders"


def _link(link: Path, target: Path) -> None:
    """A symbolic link at `link` to `target` (absolute), replacing whatever link was there."""
    target = target.absolute()
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _reach_hub(card: ModelCard) -> ModelCard:
    """The card with the hub's size and sha256 of each missing file: one HEAD each, without retries, so
    that no network is said within seconds."""
    files = list(card.files)
    for f in files:
        if f.path is None:
            hub_revision(f.filename)  # a file pinned by revision without one: said before any request
    for i, f in enumerate(files):
        if f.path is not None:
            continue
        try:
            size, sha = remote_file(f.filename)
        except Exception as e:  # no network, a hub that does not answer, HTTP errors
            raise CheckpointError(_failed(f.filename, e)) from e
        files[i] = FileStatus(f.filename, size or f.size, size is not None, None, _expected(f.filename, None, sha))
    return ModelCard(card.name, card.depth, card.resolution, card.parameters, tuple(files))


def _download_verified(hub: Any, f: FileStatus, progress: Progress | None) -> Path:
    """Download a file and check its sha256; a mismatch is deleted and fetched once more, then refused."""
    for attempt in (1, 2):
        path = _download(hub, f, progress)
        if intact(path, f.sha256):
            return path
        _remove(path)
        log.warning("%s arrived damaged (sha256 mismatch, attempt %d); removed", f.filename, attempt)
    raise CheckpointError(
        f"{f.filename} arrived damaged twice from {HUB_FILES[f.filename].repo} (its sha256 is not {f.sha256}) "
        "and was removed; "
        f"try again later, or put the file in {models_dir_label()}."
    )


def _check_disk(card: ModelCard, hub: Any) -> None:
    folder = Path(hub.constants.HF_HUB_CACHE)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < card.download_bytes * 1.02:
        raise CheckpointError(
            f"{card.name} needs {format_size(card.download_bytes)} of downloads but the disk of the Hugging Face cache "
            f"has {format_size(free)} free; free some space, set HF_HUB_CACHE to a larger disk, or put the files "
            f"in {models_dir_label()}."
        )


def _download(hub: Any, f: FileStatus, progress: Progress | None) -> Path:
    if progress is not None:
        progress(f.filename, 0, f.size)
    kwargs: dict[str, Any] = {}
    raised: list[BaseException] = []  # by `progress`: passed on as they are (a way to cancel)
    if "tqdm_class" in inspect.signature(hub.hf_hub_download).parameters:
        kwargs["tqdm_class"] = _bar_class(f.filename, progress, raised)
    chunk = hub.constants.DOWNLOAD_CHUNK_SIZE
    hub.constants.DOWNLOAD_CHUNK_SIZE = min(chunk, max(64 << 10, f.size // STEPS))  # fine progress steps
    try:
        where = HUB_FILES[f.filename]
        return Path(hub.hf_hub_download(where.repo, where.filename, revision=hub_revision(f.filename), **kwargs))
    except Exception as e:  # every hub or network failure becomes one sentence
        if raised:
            raise raised[0] from None
        raise CheckpointError(_failed(f.filename, e)) from e
    finally:
        hub.constants.DOWNLOAD_CHUNK_SIZE = chunk


def _failed(filename: str, e: Exception) -> str:
    """One sentence for a download that failed: the hub's answer, or that it could not be reached."""
    reason = _reason(e)
    repo = HUB_FILES[filename].repo
    what = f"download {filename} from {repo}" if reason.startswith("HTTP") else f"reach the hub for {filename}"
    return (
        f"Could not {what} ({reason}); check the connection (or HF_ENDPOINT), or put the file in {models_dir_label()}."
    )


def _reason(e: Exception) -> str:
    """What went wrong, without the paths a hub error may carry."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    name = type(e).__name__
    if name == "LocalEntryNotFoundError" or "Connect" in name or "Timeout" in name:
        return "no network connection to it"
    return name


def _bar_class(filename: str, progress: Progress | None, raised: list[BaseException]) -> type:
    """A tqdm class for huggingface_hub: a terminal bar named after the file, or calls of `progress`
    (whose exceptions are noted in `raised`)."""
    quiet = progress is not None or os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true")

    class Bar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            desc = str(kwargs.get("desc") or "")
            if not desc or "/" in desc or desc.startswith("(…)"):  # huggingface_hub shows the URL's tail
                kwargs["desc"] = filename
            kwargs.update(disable=quiet, file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)

        def update(self, n: float | None = 1) -> bool | None:
            self.done += int(n or 0)
            if progress is not None:
                try:
                    progress(filename, self.done, self.total)
                except BaseException as e:
                    raised.append(e)
                    raise
            return super().update(n)

        def update_transfer(self, n: int) -> None:
            """Network bytes of a Xet download, already counted by `update`: one bar per file."""

    return Bar
