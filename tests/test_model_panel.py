"""The studio's models for real: `python app.py --model d16` fetching through huggingface_hub from the
stand-in hub (tests/hub_standin.py), the Model panel in Chromium (the list, Load with progress, the demo
notice, a broken model, a page told that the model changed), the locked model (also through Gradio's
HTTP routes), and the memory of a switch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hub_standin import TINY, StandInHub, hub_env
from playwright.sync_api import Browser, Page
from studio_server import APP, ROOT, running

from studio.launch import parse_args, switch_allowed

ARTIFACTS = ROOT / "test-artifacts" / "model-panel"
LISTED = ["demo", "d16", "d20", "d24", "d30", "d36", "infinity-2b", "infinity-125m"]


needs_chromium = pytest.mark.browser  # (the browser fixture skips where there is no Chromium)


BARS = (  # every download bar value the page shows (fraction done), sampled every 20 ms
    "() => { window.bars = []; setInterval(() => { const p = document.querySelector('#model-progress progress');"
    " if (p && p.max > 1 && window.bars.at(-1) !== p.value / p.max) window.bars.push(p.value / p.max); }, 20); }"
)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        return r.read().decode()


def join_and_wait(url: str, payload: dict) -> None:
    """Queue a call as a page does (gradio_api/queue/join) and wait until the server says it ended
    (process_completed on the session's event stream); a call the server refuses at once ends there."""
    status, body = post(url + "gradio_api/queue/join", payload)
    if status != 200:
        return
    event_id = json.loads(body)["event_id"]
    stream = f"{url}gradio_api/queue/data?session_hash={payload['session_hash']}"
    with urllib.request.urlopen(stream, timeout=60) as events:
        for line in events:
            if not line.startswith(b"data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "close_stream" or (
                message.get("msg") == "process_completed" and message.get("event_id") == event_id
            ):
                return
    pytest.fail(f"the server never said that call {payload['fn_index']} ended")


def post(url: str, payload: dict) -> tuple[int, str]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def generated_by(url: str) -> str:
    """The model that makes a picture through the /generate endpoint now (raw HTTP, as any client)."""
    status, body = post(url + "gradio_api/call/generate", {"data": [0, {"seed": 1}]})
    assert status == 200, body
    events = get(url + f"gradio_api/call/generate/{json.loads(body)['event_id']}")
    done = events.split("event: complete\ndata: ", 1)[1].splitlines()[0]
    return json.loads(done)[1]["model"]


# ---- fetching on first use, from the command line -------------------------------------------------
def test_first_start_downloads_d16_then_the_cache_serves_it(hub: StandInHub, published, tmp_path):
    env = hub_env(hub, tmp_path)
    args = ["--model", "d16", "--device", "cpu", "--port", "0"]
    with running(args, tmp_path, env, tmp_path) as app:
        assert "VAR-d16" in get(app.url + "config")
    said = re.search(r"Downloading d16: vae_ch160v4096z32.pth \(\d+ MB\), var_d16.pth \(\d+ MB\)", app.log)
    assert said, app.log
    assert said.start() < app.log.index("var_d16.pth: ") < app.log.index("var_d16.pth: 100%")  # size, then the bar
    assert sorted(hub.requests("GET")) == sorted(published)
    assert {p.read_bytes() for p in (tmp_path / "hf" / "hub").rglob("blobs/*")} == set(published.values())

    hub.stop()
    with running(args, tmp_path, env, tmp_path) as again:
        assert "VAR-d16" in get(again.url + "config")
    assert "Downloading" not in again.log


@pytest.mark.parametrize("how", ["--offline", "HF_HUB_OFFLINE=1"])
def test_offline_requests_nothing_and_says_which_file_goes_where(hub: StandInHub, tmp_path, how):
    env = hub_env(hub, tmp_path, **({"HF_HUB_OFFLINE": "1"} if how != "--offline" else {}))
    args = ["--model", "d16", "--device", "cpu", "--port", "0", *([how] if how == "--offline" else [])]
    run = subprocess.run([sys.executable, str(APP), *args], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0 and hub.log == []
    assert "error: vae_ch160v4096z32.pth is not on this machine: put it in models/ with var_d16.pth" in run.stderr
    assert "downloads are off" in run.stderr
    assert str(tmp_path) not in run.stderr and "Traceback" not in run.stderr


def test_switching_is_locked_off_loopback_unless_asked():
    assert switch_allowed(parse_args([]))
    assert not switch_allowed(parse_args(["--host", "0.0.0.0"]))
    assert not switch_allowed(parse_args(["--share"]))
    assert switch_allowed(parse_args(["--host", "0.0.0.0", "--model-switch"]))
    assert not switch_allowed(parse_args(["--no-model-switch"]))


# ---- the Model panel in a browser ----------------------------------------------------------------
def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(60_000)
    page.goto(url)
    open_panel(page)
    page.wait_for_function("() => document.querySelector('#model-info').innerText.includes(' px')")
    return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def model_info(page: Page) -> str:
    return page.inner_text("#model-info")


def wait_info(page: Page, text: str) -> None:
    """Wait until the model line shows `text` (a fresh page gets the current model from its load event)."""
    page.wait_for_function(f"() => document.querySelector('#model-info').innerText.includes({text!r})")


def open_panel(page: Page) -> None:
    page.locator("#model").get_by_text("Model", exact=True).first.click()
    page.wait_for_selector("#model-list table", state="visible")


def pick(page: Page, name: str) -> None:
    page.click("#model-choice input")
    page.click(f"ul[role='listbox'] li[aria-label^='{name} ·']")


def toast(page: Page) -> str:
    """The text of the next error or info toast, which is then closed."""
    body = page.locator("[data-testid='toast-body']").first
    body.wait_for(timeout=120_000)
    text = re.sub(r"^(Error|Info|Warning)\s*×?\s*", "", " ".join(body.inner_text().split()))
    for close in page.locator("[data-testid='toast-close']").all():
        close.click()
    page.wait_for_function("() => !document.querySelector(\"[data-testid='toast-body']\")")
    return text


def generate(page: Page) -> str:
    """Press Generate new picture (its own tab); the status it ends with, or the toast it raised."""
    page.click("#tab-generate-button")
    page.evaluate("document.querySelector('#status textarea').value = ''")
    page.click("#run-generate")
    page.wait_for_function(
        "() => /^(Done|Failed)/.test(document.querySelector('#status textarea').value)"
        " || document.querySelector(\"[data-testid='toast-body']\") !== null",
        timeout=120_000,
    )
    if page.locator("[data-testid='toast-body']").count():
        return toast(page)
    return page.input_value("#status textarea")


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models folder with a working model folder (tiny) and one whose VAR file is damaged (broken)."""
    models = tmp_path / "models"
    for name in ("tiny", "broken"):
        (models / name).mkdir(parents=True)
        shutil.copy(TINY / "vae.safetensors", models / name / "vae.safetensors")
    shutil.copy(TINY / "var.safetensors", models / "tiny" / "var.safetensors")
    (models / "broken" / "var.pth").write_bytes(b"not a checkpoint\n" * 1000)
    return models


@needs_chromium
def test_the_model_panel_lists_downloads_loads_and_survives_a_broken_model(
    hub: StandInHub, published, tmp_path, models_dir, browser
):
    hub.seconds_per_mb = 0.2  # a few seconds of download: the progress shows
    env = hub_env(hub, tmp_path)
    with running(["--port", "0", "--device", "cpu"], tmp_path, env, tmp_path) as app:
        first, other = open_page(browser, app.url), open_page(browser, app.url)
        notice = first.inner_text("#demo-notice")
        assert "64-px toy trained on emoji" in notice and "python app.py --model d16" in notice
        rows = [" ".join(r.split()) for r in first.locator("#model-list tbody tr").all_inner_texts()]
        assert [r.split()[0] for r in rows] == [*LISTED, "broken", "tiny"]
        assert rows[0].startswith("demo (loaded) 64 px 18 MB yes")
        assert rows[1] == "d16 256 px 1.68 GB to download no GPU 1.15 GB, CPU 1.86 GB"  # memory: an estimate
        assert rows[6] == "infinity-2b 1024 px 18.71 GB to download no GPU 12.94 GB, CPU 25.45 GB"
        assert rows[8].startswith("broken unreadable") and rows[9].startswith("tiny 64 px 20 MB yes")
        assert "not measured" in first.inner_text("#model-list")
        assert first.locator("#model-path").count() == 0 and first.locator("#model textarea").count() == 0
        assert first.locator("#model input").count() == first.locator("#model-choice input").count() == 1
        shot(first, "panel")

        pick(first, "d16")
        first.evaluate(BARS)
        first.click("#load-model")
        first.wait_for_function(
            "() => /Downloading vae_ch160v4096z32.pth: [1-9][0-9]?\\.[0-9] % of \\d+ MB/.test("
            "(document.querySelector('#model-progress') || {}).innerText)"
        )  # a real bar that moves as the bytes come
        shot(first, "downloading")
        first.wait_for_function("() => document.querySelector('#model-info').innerText.includes('VAR-d16')")
        assert toast(first) == "Loaded model VAR-d16."
        bars = first.evaluate("window.bars")
        assert len(set(bars)) >= 5 and bars == sorted(bars) or len(set(bars)) >= 10, bars  # fine steps, two files
        assert all(0 <= b <= 1 for b in bars) and not first.locator("#model-progress").is_visible()
        assert not first.locator("#demo-notice").is_visible()
        assert sorted(hub.requests("GET")) == sorted(published)
        assert re.search(r"d16 \(loaded\) 256 px \d+ MB yes", " ".join(first.inner_text("#model-list").split()))

        # The other page's settings were made for the demo: told once, brought up to date, then it runs.
        said = generate(other)
        assert said == (
            "The studio's model was switched to VAR-d16 since this page set up its settings; they and the "
            "class list now fit it, so check them and run again."
        )
        assert "VAR-d16" in model_info(other)
        assert generate(other).startswith("Done: 4 candidate(s)")

        pick(first, "broken")
        first.click("#load-model")
        failed = toast(first)
        shot(first, "broken")
        assert failed == "var.pth is not a readable PyTorch checkpoint; re-download it; VAR-d16 is loaded again."
        assert "VAR-d16" in model_info(first) and generate(first).startswith("Done: 4 candidate(s)")
        assert str(tmp_path) not in app.log.split("refused:")[-1]

        # The handler is a real HTTP route where switching is allowed (the locked test relies on this).
        status, body = post(app.url + "gradio_api/call/load_model", {"data": ["tiny"]})
        assert status == 200, body
        get(app.url + f"gradio_api/call/load_model/{json.loads(body)['event_id']}")
        wait_info(open_page(browser, app.url), "tiny · 64×64 px")


@needs_chromium
def test_without_a_network_the_panel_says_so_at_once(hub: StandInHub, tmp_path, browser):
    hub.stop()
    with running(["--port", "0", "--device", "cpu"], tmp_path, hub_env(hub, tmp_path), tmp_path) as app:
        page = open_page(browser, app.url)
        pick(page, "d16")
        page.click("#load-model")
        page.locator("[data-testid='toast-body']").first.wait_for()
        assert toast(page) == (
            "Could not reach the hub for vae_ch160v4096z32.pth (no network connection to it); check the connection "
            "(or HF_ENDPOINT), or put the file in models/; demo stays loaded."
        )
        assert not page.locator("#model-progress").is_visible() and "demo" in model_info(page)
        assert "Retrying in" not in app.log  # said at the first failure: no rounds of huggingface_hub's retries


@needs_chromium
def test_a_locked_model_cannot_be_switched_from_the_page_or_by_http(hub: StandInHub, tmp_path, models_dir, browser):
    env = hub_env(hub, tmp_path)
    with running(["--port", "0", "--device", "cpu", "--no-model-switch"], tmp_path, env, tmp_path) as app:
        page = open_page(browser, app.url)
        assert page.locator("#load-model").count() == 0 and page.locator("#model-choice").count() == 0
        assert "fixed on this server" in page.inner_text("#model-fixed")
        notice = page.inner_text("#demo-notice")
        assert "python app.py --model d16" in notice and "press Load" not in notice
        shot(page, "locked")

        config = json.loads(get(app.url + "config"))
        assert all(d.get("api_name") != "load_model" for d in config["dependencies"])
        for route in ("call", "run"):  # a handler the server never registered: 404, in one sentence
            assert post(app.url + f"gradio_api/{route}/load_model", {"data": ["d16"]}) == (
                404,
                '{"error":"This studio has no such handler."}',
            )
        unknown = {"data": ["d16"], "fn_index": len(config["dependencies"]) + 7, "session_hash": "probe"}
        assert post(app.url + "gradio_api/queue/join", unknown)[0] == 404
        for index in range(len(config["dependencies"])):  # every handler the server has, with a model name
            for data in (["d16"], ["d16", None], ["tiny"]):
                join_and_wait(
                    app.url, {"data": data, "fn_index": index, "session_hash": f"probe{index}", "event_data": None}
                )
        assert hub.log == []  # every call above has ended
        assert generated_by(app.url) == "demo"


MISSING = """
from editing import ModelSwitch, SwitchError, load_model
from editing.models import fetch_files
from studio.session import Session

switch = ModelSwitch(
    lambda name, progress: load_model(name, "{models}", offline=True, listed_only=True),
    "{models}",
    "demo",
    fetch=lambda name, progress: fetch_files(name, True, progress),
)
session = Session(load_model("demo"))
for name in ("d16", "../models/tiny", "{models}/tiny"):
    try:
        switch.switch(session, name)
    except SwitchError as e:
        print(e)
print(session.editor.name, session.model_serial)
session.close()
"""


def test_a_model_missing_offline_or_not_listed_is_one_sentence_without_server_paths(
    hub: StandInHub, tmp_path, models_dir
):
    code = textwrap.dedent(MISSING.format(models=models_dir))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=hub_env(hub, tmp_path, VAR_MODELS_DIR=str(models_dir)),  # as --models-dir sets it
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    missing, unlisted, by_path, state = out.stdout.splitlines()
    assert missing.startswith(
        "vae_ch160v4096z32.pth is not on this machine: put it in the models folder with var_d16.pth"
    ), missing
    assert missing.endswith("; demo stays loaded.") and hub.log == []
    assert unlisted == by_path == "Only the listed models can be loaded here; pick one from the list."
    assert all(str(tmp_path) not in line for line in (missing, unlisted))
    assert state == "demo 0"  # the demo stayed, and pages were not told of a change


# ---- memory: the old model goes before the new one comes ----------------------------------------
SWITCH = """
import os, shutil, torch, var_core
from editing import ModelSwitch, load_model
from studio.session import Session

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

torch.manual_seed(0)
big = var_core.VAR(vocab_size=64, z_channels=8, depth=8, num_classes=10, patch_nums=(1, 2, 3, 4))
for name in ("big-a", "big-b"):
    shutil.copytree("{tiny}", f"models/{{name}}", ignore=shutil.ignore_patterns("var.safetensors", "expected*"))
torch.save(big.state_dict(), "models/big-a/var.pth")
os.link("models/big-a/var.pth", "models/big-b/var.pth")  # the same weights, loaded twice
del big
size = sum(p.stat().st_size for p in __import__("pathlib").Path("models/big-b").iterdir())
switch = ModelSwitch(lambda name, progress: load_model(name, "models", listed_only=True), "models", "big-a")
session = Session(load_model("big-a", "models", listed_only=True))
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
switch.switch(session, "big-b")
print(size, status("VmHWM") - before, session.editor.name)
session.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_switch_never_holds_two_large_models(tmp_path):
    (tmp_path / "models").mkdir()
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SWITCH.format(tiny=TINY))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    size, grown, name = out.stdout.split()
    assert name == "big-b"
    assert int(grown) < 0.5 * int(size), (
        f"peak grew by {int(grown) / 1e6:.0f} MB switching to a {int(size) / 1e6:.0f} MB model"
    )
