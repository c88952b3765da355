"""Nothing a visitor sends makes the studio answer or log more than a bounded amount: a refusal
quotes at most 80 characters of a value (with its length), a body over its route's limit is refused
before it is read, a log line is capped; every handler reached by its fn_index on /queue/join
answers one sentence or runs (never `{"error": null}` and a traceback), a value too many is refused,
and a model choice the list does not offer is one line in the log. Raw HTTP against `python app.py`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import requests

from editing.errors import QUOTE_CHARS
from studio.bounds import LOG_LINE_CHARS

ROOT = Path(__file__).resolve().parent.parent

BIG = 5 * 1024 * 1024  # a hostile value of 5 MB


def _call(url: str, name: str, data: list) -> tuple[int, str]:
    """POST to /gradio_api/call/NAME -> (status, the error sentence or the answer's text)."""
    posted = requests.post(f"{url}gradio_api/call/{name}", json={"data": data}, timeout=120)
    if posted.status_code != 200:
        return posted.status_code, posted.text
    stream = requests.get(f"{url}gradio_api/call/{name}/{posted.json()['event_id']}", timeout=300).text
    lines = stream.splitlines()
    event = [line[7:] for line in lines if line.startswith("event: ")][-1]
    payload = json.loads([line[6:] for line in lines if line.startswith("data: ")][-1])
    return 200, payload["error"] if event == "error" else json.dumps(payload)


def _join(url: str, fn_index: int, data: list, session: str, event_data: object = None) -> dict:
    """One call by fn_index through the queue, as the page makes it -> its process_completed message."""
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": event_data}
    joined = requests.post(f"{url}gradio_api/queue/join", json=body, timeout=120)
    assert joined.status_code == 200, joined.text[:300]
    with requests.get(f"{url}gradio_api/queue/data", params={"session_hash": session}, stream=True, timeout=300) as s:
        for line in s.iter_lines():
            if line.startswith(b"data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError(f"fn_index {fn_index}: the stream ended without an answer")


def _sentence(text: object) -> bool:
    return isinstance(text, str) and 0 < len(text) <= 600 and text.endswith(".") and "Traceback" not in text


def _dependencies(url: str) -> list[dict]:
    return requests.get(f"{url}config", timeout=60).json()["dependencies"]


def _endpoint(url: str, name: str) -> dict:
    return next(d for d in _dependencies(url) if d.get("api_name") == name)


def _with_options(url: str, name: str, options: object) -> list:
    """The values of a call to the endpoint `name`: every field left empty but `options` (checked first)."""
    config = requests.get(f"{url}config", timeout=60).json()
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    return [options if labels[i] == "options" else None for i in _endpoint(url, name)["inputs"]]


def test_hostile_large_values_are_quoted_and_the_log_stays_small(studio):
    start = len(studio.log)
    hostile = "y" * (900 * 1024)  # under the 1 MB a /call body may have
    for name, options in {"generate": {"seed": hostile}, "outpaint": {hostile: 1}}.items():
        status, text = _call(studio.url, name, _with_options(studio.url, name, options))
        assert status == 200 and _sentence(text) and f"({len(hostile)} characters)" in text, (name, text[:300])
        assert "y" * (QUOTE_CHARS + 1) not in text

    status, text = _call(studio.url, "generate", _with_options(studio.url, "generate", {"seed": "y" * BIG}))
    assert status == 413 and text.startswith("The request is larger than the 1 MB"), text[:300]

    generate = _endpoint(studio.url, "generate")["id"]
    for i in range(4):  # the queue takes a page's pictures, so 5 MB values reach the handler: quoted
        answer = _join(studio.url, generate, _with_options(studio.url, "generate", {"seed": "z" * BIG}), f"hostile{i}")
        error = answer["output"]["error"]
        assert _sentence(error) and f"({BIG} characters)" in error and "z" * (QUOTE_CHARS + 1) not in error

    grown = len(studio.log) - start
    assert grown < 64 * 1024, f"the log grew by {grown} bytes for 8 hostile values of up to 5 MB"
    assert "Traceback" not in studio.log[start:]


def test_a_body_over_its_limit_is_refused_before_it_is_read(studio):
    """A body that says it is a gigabyte is refused at once: the studio answers without waiting for it."""
    where = urlparse(studio.url)
    with socket.create_connection((where.hostname, where.port), timeout=60) as conn:
        conn.sendall(
            b"POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"."):  # the headers, then the sentence
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    text = answer.decode(errors="replace")
    assert text.startswith("HTTP/1.1 413"), text[:300]
    assert text.split("\r\n\r\n", 1)[1].startswith("The request is larger than the 134.3 MB"), text


def test_every_fn_index_answers_a_sentence_or_runs(studio):
    """Each handler the page has, reached by its number with empty values and no event data: the
    page-only ones (js) and `select` without a click included."""
    start = len(studio.log)
    deps = _dependencies(studio.url)
    assert len(deps) > 20
    for dep in deps:
        answer = _join(studio.url, dep["id"], [None] * len(dep["inputs"]), f"walk{dep['id']}")
        if not answer["success"]:
            assert _sentence(answer["output"].get("error")), (dep["id"], dep.get("api_name"), answer["output"])
    unknown = requests.post(
        f"{studio.url}gradio_api/queue/join", json={"data": [], "fn_index": 9999, "session_hash": "x"}, timeout=60
    )
    assert unknown.status_code == 404 and unknown.json() == {"error": "This studio has no such handler."}
    assert "Traceback" not in studio.log[start:], studio.log[start:][-3000:]


def test_a_value_too_many_is_refused(studio, photo_and_mask):
    def upload(path) -> dict:
        sent = requests.post(f"{studio.url}gradio_api/upload", files={"files": path.open("rb")}, timeout=60)
        return {"path": sent.json()[0], "meta": {"_type": "gradio.FileData"}}

    image, mask = upload(photo_and_mask["image"]), upload(photo_and_mask["mask"])
    takes = len(_endpoint(studio.url, "inpaint")["inputs"])  # the picture, the mask, any fields, the options
    values = [image, mask, *[None] * (takes - 3), {"seed": 1}]
    status, text = _call(studio.url, "inpaint", [*values, "a value too many"])
    assert status == 200 and text == f"This takes {takes} values, and {takes + 1} were sent.", text[:300]


def test_a_choice_the_model_list_lacks_is_one_line_in_the_log(studio):
    start = len(studio.log)
    answer = _join(studio.url, _endpoint(studio.url, "load_model")["id"], ["no-such-model" * 30, None], "choice")
    error = answer["output"]["error"]
    assert _sentence(error) and "is not one of the choices" in error and "(390 characters)" in error, error
    new = studio.log[start:]
    assert "Traceback" not in new and sum("is not one of the choices" in line for line in new.splitlines()) == 1


def test_a_log_line_is_cut_whoever_logs_it():
    """The studio's cap covers every logger, those made after it too (Gradio's, uvicorn's): a 1 MB line
    comes out as LOG_LINE_CHARS characters and its length."""
    script = (
        "import logging; from studio.bounds import cap_log_lines\n"
        "logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s'); cap_log_lines()\n"
        "logging.getLogger('uvicorn.error').info('value %s', 'v' * 1_000_000)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.startswith("uvicorn.error: value vvv") and done.stderr.rstrip().endswith("(1000006 characters)")
    assert len(done.stderr) < LOG_LINE_CHARS + 100
