"""`var-edit` / `python -m editing` on folders and job lists: each job is a checked EditRequest, a bad
one fails alone by name, reruns skip finished outputs, one mask can serve a whole folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editing import read_params
from editing.__main__ import main


def _picture(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    channels = [np.sin(xx * f + p) * np.cos(yy * g + q) for f, g, p, q in rng.uniform(1, 8, (3, 4))]
    return Image.fromarray(((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8))


def _mask(w: int, h: int) -> Image.Image:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = 255
    return Image.fromarray(mask)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for i, name in enumerate(("a", "b", "photo[1]", "c", "d", "e", "f")):
        _picture(64, 64, i).save(jobs / f"{name}.png")
        _mask(64, 64).save(jobs / f"{name}.mask.png")
    (jobs / "b.json").write_text('{"cfg": "high"}')
    (jobs / "c.json").write_text('{"mode": "edit_class", "class_id": 2, "options": {"num_samples": 2}}')
    (jobs / "d.json").write_text("[1, 2]")
    (jobs / "e.json").write_text('{"mode": "bogus"}')
    (jobs / "f.json").write_text('{"seed": 1e30}')
    return jobs


def test_folder_jobs_fail_alone_and_rerun_skips(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(folder), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    report = json.loads((out / "var-edit-report.json").read_text())
    assert sorted(report["done"]) == ["a", "c", "photo[1]"]
    assert sorted(report["failed"]) == ["b", "d", "e", "f"]
    assert "'cfg' must be a number" in report["failed"]["b"] and "Unknown mode 'bogus'" in report["failed"]["e"]
    assert "'seed' must be a whole number" in report["failed"]["f"] and "failed: b:" in err and "Traceback" not in err
    assert read_params(out / "photo[1].inpaint.png")["mode"] == "inpaint"  # its mask was found, not globbed
    assert {p.name for p in out.glob("c.*")} == {"c.edit_class-1.png", "c.edit_class-2.png"}
    first = np.asarray(Image.open(out / "a.inpaint.png"))
    assert main([str(folder), "--out-dir", str(out)]) == 1
    report = json.loads((out / "var-edit-report.json").read_text())
    assert sorted(report["skipped"]) == ["a", "c", "photo[1]"] and report["done"] == []
    (out / "a.inpaint.png").unlink()
    main([str(folder), "--out-dir", str(out)])
    assert np.array_equal(np.asarray(Image.open(out / "a.inpaint.png")), first), "unseeded jobs take their name's seed"
    assert main([str(folder), "--out-dir", str(out), "--cfg", "3"]) == 1
    report = json.loads((out / "var-edit-report.json").read_text())
    assert "exists" in report["failed"]["a"]  # other parameters: never overwritten without --overwrite


def test_one_mask_for_a_whole_folder(tmp_path):
    jobs = tmp_path / "pictures"
    jobs.mkdir()
    for i, (w, h) in enumerate(((64, 64), (96, 48), (40, 80))):
        _picture(w, h, i).save(jobs / f"p{i}.jpg")
    logo = np.zeros((32, 32, 3), np.uint8)
    logo[24:, 24:] = (255, 0, 255)  # the corner, painted in the studio's brush colour
    Image.fromarray(logo).save(tmp_path / "logo-mask.png")
    out = tmp_path / "out"
    assert main([str(jobs), "--mask", str(tmp_path / "logo-mask.png"), "--out-dir", str(out), "--seed", "3"]) == 0
    for i, (w, h) in enumerate(((64, 64), (96, 48), (40, 80))):
        before = np.asarray(Image.open(jobs / f"p{i}.jpg").convert("RGB"))
        after = np.asarray(Image.open(out / f"p{i}.inpaint.png"))
        assert after.shape == (h, w, 3)
        corner = np.zeros((h, w), bool)
        corner[h * 3 // 4 :, w * 3 // 4 :] = True
        assert np.array_equal(after[~corner], before[~corner]) and (after[corner] != before[corner]).any()


def test_json_job_list_and_bad_out_dir(tmp_path, capsys):
    _picture(64, 64, 0).save(tmp_path / "x.png")
    _mask(64, 64).save(tmp_path / "x-mask.png")
    jobs = [
        {"name": "one", "mode": "inpaint", "image": "x.png", "mask": "x-mask.png", "options": {"seed": 4}},
        {"name": "two", "mode": "generate", "class_id": 1},
        {"name": "three", "mode": "outpaint", "image": "x.png", "right": 16},
        "not a job",
    ]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    out = tmp_path / "out"
    assert main([str(tmp_path / "jobs.json"), "--out-dir", str(out)]) == 1
    assert {p.name for p in out.glob("*.png")} == {"one.inpaint.png", "two.generate.png", "three.outpaint.png"}
    assert read_params(out / "one.inpaint.png")["seed"] == 4
    (tmp_path / "file").write_text("")
    assert main([str(tmp_path / "jobs.json"), "--out-dir", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_missing_input_is_called_missing(tmp_path, capsys):
    assert main([str(tmp_path / "missing.png"), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing.png'} does not exist" in err and "neither" not in err
    assert not (tmp_path / "out").exists(), "refused before anything is made"
