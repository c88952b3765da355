"""A stand-in for the Hugging Face hub on 127.0.0.1, for tests that fetch published models for real.

It serves what `hf_hub_download` asks for (HEAD and GET on /{repo}/resolve/{revision}/{filename},
with X-Repo-Commit, ETag, Content-Length and Range) from several repositories and logs every request;
the `published` fixture (tests/conftest.py) gives tiny published-format .pth files under the d16 names,
`infinity_published` tiny random files in the layout of infinity-125m's (FoundationVision/Infinity and
google/flan-t5-xl). Clients run in fresh processes, since huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE
and HF_HUB_OFFLINE at import.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import torch
from safetensors.torch import load_file

from var_core.zoo import HF_REPO, INFINITY_REPO, T5_REPO, VQVAE_FILE

TINY = Path(__file__).parent / "fixtures" / "tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class StandInHub:
    """A threaded HTTP server that answers like the hub's file endpoints, and logs every request. files: those of
    FoundationVision/var; repos: other repositories' files by repository. The names in `cut_once`, `missing` and
    `damage` are file names (the published ones are unique across repositories)."""

    def __init__(self, files: dict[str, bytes], repos: dict[str, dict[str, bytes]] | None = None):
        self.files = files
        self.repos = {HF_REPO: files, **(repos or {})}
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut_once: set[str] = set()  # files whose next full GET stops halfway through the body
        self.missing: set[str] = set()  # files answered with 404
        self.seconds_per_mb = 0.0  # > 0: bodies are sent in 64 kB pieces at this pace (a slow connection)
        # file -> (how, times): its next `times` GETs serve a bad body under the true sha256: "flip" turns
        # 4 KiB in the middle (the true size), "cut" ends it halfway (HEAD and GET announce the cut size)
        self.damage: dict[str, tuple[str, int]] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                asked = self.headers.get("Range")
                hub.log.append((self.command, self.path, asked))
                m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", urlsplit(self.path).path)
                files = hub.repos.get(m[1], {}) if m is not None else {}
                if m is None or m[3] not in files or m[3] in hub.missing:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                name = m[3]
                data = files[name]
                sha = hashlib.sha256(data).hexdigest()
                data = hub._damaged(name, data, count=self.command == "GET")
                start = int(re.fullmatch(r"bytes=(\d+)-", asked)[1]) if asked else 0
                self.send_response(206 if asked else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{sha}"')
                self.send_header("X-Linked-Etag", f'"{sha}"')  # as the hub announces an LFS file's sha256
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                if name in hub.cut_once and not asked:
                    hub.cut_once.discard(name)
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if hub.seconds_per_mb <= 0:
                    self.wfile.write(data[start:])
                    return
                for at in range(start, len(data), 65536):
                    self.wfile.write(data[at : at + 65536])
                    self.wfile.flush()
                    time.sleep(hub.seconds_per_mb * 65536 / 1e6)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _damaged(self, filename: str, data: bytes, count: bool) -> bytes:
        """The body to serve now: `data`, or its damaged form while `damage` asks for it."""
        how, times = self.damage.get(filename, ("", 0))
        if times <= 0:
            return data
        if count:
            self.damage[filename] = (how, times - 1)
        if how == "cut":
            return data[: len(data) // 2]
        middle = len(data) // 2
        return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 4096]) + data[middle + 4096 :]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests(self, method: str | None = None) -> list[str]:
        """Requested file names (all, or of one method), in order."""
        return [p.rsplit("/", 1)[-1] for m, p, _ in self.log if method in (None, m)]


def _pth(path: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save(load_file(str(path)), buffer)
    return buffer.getvalue()


def published_files() -> dict[str, bytes]:
    """The tiny reference pair as plain .pth state dicts under the published d16 names."""
    return {VQVAE_FILE: _pth(TINY / "vae.safetensors"), "var_d16.pth": _pth(TINY / "var.safetensors")}


def infinity_published(work: Path) -> dict[str, dict[str, bytes]]:
    """Tiny random files under infinity-125m's published names, by repository (made in `work`): the transformer
    as upstream pickles it (blocks in chunks), the VAE as `{"vae": state_dict}` with plain layer names, and a
    flan-T5-shaped T5 (encoder and decoder) in two safetensors shards, shared embedding and encoder first, with a
    word-level tokenizer."""
    from safetensors.torch import save_file
    from transformers import T5Config, T5ForConditionalGeneration

    from infinity_core import testing
    from infinity_core.loading import transformer_keys_to_upstream

    def pickled(obj: object) -> bytes:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return buffer.getvalue()

    transformer = transformer_keys_to_upstream(testing.tiny_transformer().state_dict(), 2)
    infinity = {
        "infinity_125M_256x256.pth": pickled(transformer),
        "infinity_vae_d16.pth": pickled({"vae": testing.vae_state_plain(testing.tiny_vae())}),
    }
    torch.manual_seed(0)
    config = T5Config(**testing.TINY_T5)
    state = T5ForConditionalGeneration(config).state_dict()
    state = {k: v for k, v in state.items() if not k.endswith("embed_tokens.weight")}  # tied to shared.weight
    first = {k: v.contiguous() for k, v in state.items() if k == "shared.weight" or k.startswith("encoder.")}
    rest = {k: v.contiguous() for k, v in state.items() if k not in first}
    work.mkdir(parents=True, exist_ok=True)
    save_file(first, str(work / "shard1.safetensors"), metadata={"format": "pt"})
    save_file(rest, str(work / "shard2.safetensors"), metadata={"format": "pt"})
    config.to_json_file(str(work / "config.json"))
    testing.write_tokenizer(work, list(testing.WORDS), config.vocab_size)
    t5 = {
        "config.json": (work / "config.json").read_bytes(),
        "model-00001-of-00002.safetensors": (work / "shard1.safetensors").read_bytes(),
        "model-00002-of-00002.safetensors": (work / "shard2.safetensors").read_bytes(),
        "tokenizer.json": (work / "tokenizer.json").read_bytes(),
        "tokenizer_config.json": (work / "tokenizer_config.json").read_bytes(),
    }
    return {INFINITY_REPO: infinity, T5_REPO: t5}


def hub_env(hub: StandInHub, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE_", "VAR_MODELS_DIR"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }  # no VAR_MODELS_DIR: ./models of the working directory (tmp_path), unless `extra` sets one
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
        HF_HUB_DISABLE_TELEMETRY="1",
        VAR_EDIT_UNPINNED="1",  # the stand-in serves tiny files under the published names, not the pinned ones
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **extra,
    )
    return env


def run_python(code: str, env: dict[str, str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out
