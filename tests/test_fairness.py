"""Fairness on the studio as the README starts it (`python app.py`, default flags): another visitor's small
edit is served while a 16384-px panorama (about 150 s of work) runs, decided by the order of events (the
small result arrives before the panorama ends), never by a clock; its time beside the panorama is printed,
and measured in bench/soak.py."""

from __future__ import annotations

import time

from PIL import Image
from studio_server import running


def test_a_small_edit_is_served_beside_a_panorama(tmp_path, photo_and_mask):
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status

    with running([], tmp_path) as studio:
        big_client, small_client = Client(studio.url, verbose=False), Client(studio.url, verbose=False)
        picture = handle_file(str(photo_and_mask["image"]))
        panorama = big_client.submit(picture, right=16384 - 96, options={"seed": 1}, api_name="/outpaint")
        deadline = time.monotonic() + 600  # a loaded machine may start the panorama late
        while panorama.status().code != Status.PROCESSING:  # the server says the panorama has started
            assert not panorama.done() and time.monotonic() < deadline, panorama.status()
            time.sleep(0.1)
        started = time.monotonic()
        mask = handle_file(str(photo_and_mask["mask"]))
        path, params = small_client.predict(picture, mask, {"seed": 2}, api_name="/inpaint")
        waited = time.monotonic() - started
        assert not panorama.done(), "the small edit waited for the whole panorama"
        assert params["mode"] == "inpaint" and Image.open(path).size == (96, 80)
        print(f"small edit served in {waited:.2f} s beside the panorama")
        panorama.cancel()
