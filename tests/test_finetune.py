"""var-edit-train: fine-tuning on a tiny generated class folder, on the CPU.

The runs start from the tiny reference model (tests/fixtures/tiny: a VAR of depth 2 on 4 scales), the
smallest model that trains, resumes and runs on Ray like any other; the demo model is loaded only where
it is the subject. A few steps each (float32, so runs compare within float tolerance); the folder is
three classes of coloured shapes drawn here.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from editing import Editor
from editing.models import list_models
from training.__main__ import main
from training.class_folder import load_class_folder
from training.finetune import Recipe, StartPoint, evaluate_loss, finetune, load_start, new_class_table
from training.measure_finetune import heldout_cross_entropy
from training.ray_run import RAY_FOLDER
from training.run_folder import RunFolder, read_state

SHAPES = {"red disc": (220, 40, 40), "green square": (40, 170, 60), "blue bar": (40, 70, 220)}
FAST = ["--batch", "6", "--no-bf16", "--samples-every", "0", "--threads", "2"]
TINY = Path(__file__).parent / "fixtures" / "tiny"


def draw_folder(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """root/<class>/<i>.png: 64 px shapes of one colour per class, placed at random."""
    rng = np.random.default_rng(seed)
    for name, colour in SHAPES.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", (64, 64), "white")
            draw = ImageDraw.Draw(img)
            o, s = (int(v) for v in rng.integers((4, 34), (16, 46)))
            if name == "red disc":
                draw.ellipse((o, o, o + s, o + s), fill=colour)
            elif name == "green square":
                draw.rectangle((o, o, o + s, o + s), fill=colour)
            else:
                draw.rectangle((o, 24, o + s, 40), fill=colour)
            img.save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return draw_folder(tmp_path_factory.mktemp("data") / "shapes")


def tiny_on(data: Path, parts: tuple[str, ...] = ("var",)) -> tuple[StartPoint, object]:
    """The tiny model as a start point and `data` loaded for it (a new class table when the VAR trains)."""
    start = load_start(TINY)
    folder = load_class_folder(data, start.vqvae.image_size)
    if "var" in parts:
        new_class_table(start, len(folder.class_names))
    return start, folder


@pytest.fixture(scope="module")
def trained(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder from 6 steps of `var-edit-train` from the tiny model on the shapes."""
    out = tmp_path_factory.mktemp("models") / "shapes-model"
    assert main([str(shapes), "--from", str(TINY), "--out", str(out), "--steps", "6", "--warmup", "2", *FAST]) == 0
    return out


def test_finetuning_lowers_the_training_loss(shapes: Path, trained: Path) -> None:
    before, data = tiny_on(shapes)
    after = load_start(trained)
    assert evaluate_loss(after, data) < evaluate_loss(before, data) - 0.05
    run = json.loads((trained / "run.json").read_text())
    assert run["steps"] == 6 and run["counts"] == {"blue bar": 6, "green square": 6, "red disc": 6}
    card = (trained / "MODEL_CARD.md").read_text()
    assert f"from **{TINY}**" in card and "| red disc | 6 |" in card
    for picture in ("samples.png", "loss.png"):
        assert Image.open(trained / picture).size[0] > 100


def test_the_heldout_cross_entropy_compares_models_on_their_own_classes(shapes: Path, trained: Path) -> None:
    held = load_class_folder(shapes, 64)
    before, after = load_start(trained), load_start(trained)
    own = {name: i for i, name in enumerate(before.class_names)}
    same = heldout_cross_entropy(before, held, [own.get(c) for c in held.class_names])
    assert same is not None and np.isfinite(same) and same > 0
    assert same == pytest.approx(heldout_cross_entropy(after, held, list(range(3))))
    one = heldout_cross_entropy(after, held, [None, None, own["red disc"]])
    assert one is not None and one != pytest.approx(same)
    assert heldout_cross_entropy(load_start(TINY), held, [None] * 3) is None  # the tiny model has no shape classes


def test_the_model_folder_edits_with_its_classes(trained: Path) -> None:
    editor = Editor.from_pretrained(trained, device="cpu")
    assert editor.class_names == ["blue bar", "green square", "red disc"]
    picture = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(picture).ellipse((10, 10, 50, 50), fill=(220, 40, 40))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((16, 16, 47, 47), fill=255)
    for result in (
        editor.inpaint(picture, mask),
        editor.edit_class(picture, mask, class_id=editor.class_names.index("blue bar")),
        editor.generate(class_id=1),
    ):
        assert result.images[0].size == (64, 64)


def test_the_studio_lists_the_model_folder(trained: Path) -> None:
    listed = {entry.name: entry for entry in list_models(trained.parent)}
    assert listed[trained.name].kind == "folder" and listed[trained.name].resolution == 64


def test_resume_continues_exactly(shapes: Path, tmp_path: Path) -> None:
    recipe = Recipe(start=str(TINY), steps=4, batch=4, bf16=False, save_every=2, samples_every=0)
    start, data = tiny_on(shapes)
    finetune(recipe, data, start)  # uninterrupted, in memory
    out = tmp_path / "run"
    out.mkdir()
    stopped, data = tiny_on(shapes)

    def stop_at_3(progress) -> None:
        if progress.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(recipe, data, stopped, on_checkpoint=RunFolder(out, stopped, data, recipe), on_step=stop_at_3)
    assert read_state(out / "training_state.pt")["progress"]["step"] == 2  # the last complete checkpoint
    assert main([str(shapes), "--out", str(out), "--resume", "--threads", "2"]) == 0
    state = read_state(out / "training_state.pt")
    assert state["progress"]["step"] == 4 and state["progress"]["starts"] == [0, 2]
    for key, value in start.var.state_dict().items():
        torch.testing.assert_close(state["var"][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_decoder_training_keeps_the_tokens(shapes: Path) -> None:
    start, data = tiny_on(shapes, parts=("decoder",))
    frozen = {k: v.clone() for k, v in start.vqvae.state_dict().items() if not k.startswith(("decoder.", "post_quant"))}
    decoder = start.vqvae.decoder.conv_out.weight.detach().clone()
    x = data.images[:4].float().div(127.5).sub(1)
    tokens = start.vqvae.encode(x)
    finetune(Recipe(parts=("decoder",), steps=2, batch=4, bf16=False), data, start)
    for key, value in start.vqvae.state_dict().items():
        if key in frozen:
            assert torch.equal(value, frozen[key]), key
    assert not torch.equal(start.vqvae.decoder.conv_out.weight, decoder)
    start.vqvae.eval()
    for before, after in zip(tokens, start.vqvae.encode(x), strict=True):
        assert torch.equal(before, after)


@pytest.mark.parametrize(
    "case, sentence",
    [
        ("empty", "has no class sub-folders"),
        ("one class", "has only one class"),
        ("not a model", "Cannot start from"),
    ],
)
def test_bad_inputs_are_one_sentence_and_leave_no_out(
    case: str, sentence: str, shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, start = tmp_path / "data", "demo"
    data.mkdir()
    if case == "one class":
        (data / "cats").mkdir()
        Image.new("RGB", (64, 64)).save(data / "cats" / "a.png")
    elif case == "not a model":
        data, start = shapes, str(tmp_path)
        (tmp_path / "notes.txt").write_text("not weights")
    out = tmp_path / "out"
    assert main([str(data), "--from", start, "--out", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert sentence in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unreadable_and_odd_sized_pictures_are_counted(shapes: Path, tmp_path: Path) -> None:
    data = draw_folder(tmp_path / "data", per_class=2)
    (data / "red disc" / "broken.png").write_bytes(b"not a picture")
    Image.new("RGB", (100, 80), "white").save(data / "blue bar" / "wide.png")
    notes: list[str] = []
    folder = load_class_folder(data, 64, say=notes.append)
    assert folder.skipped == [str(Path("red disc") / "broken.png")] and folder.resized == 1
    assert folder.counts == {"blue bar": 3, "green square": 2, "red disc": 2}
    assert len(notes) == 2 and "1 picture(s) were not 64x64" in notes[1]


def _ray_train_workers() -> list[int]:
    """Pids of the Ray Train workers that descend from this process (its own local Ray instance)."""
    parents: dict[int, int] = {}
    titles: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            titles[int(proc.name)] = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return sorted(pid for pid, title in titles.items() if "RayTrainWorker" in title and mine(pid))


def test_ray_train_follows_one_process_and_survives_a_killed_worker(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 local CPU workers (gloo), one of them killed by its pid once Ray's controller has registered a checkpoint
    (its checkpoint_manager_snapshot.json: a checkpoint only written to storage is not one a restart gets): Ray
    restarts the group from it and the loss curve is still the one-process curve with the same global batch."""
    ray = pytest.importorskip("ray")
    # Time for a loaded machine: Ray Train gives a restarted worker group 60 s to start (each worker imports
    # torch and the project), and a start that runs late counts as one more failure. The local Ray instance
    # starts from this process, so its workers read this.
    monkeypatch.setenv("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "600")
    steps = 20  # the tiny model's steps after the first checkpoint outlast the controller's registering it
    registered = tmp_path / "ray-model" / RAY_FOLDER / "var-edit-train" / "checkpoint_manager_snapshot.json"
    recipe = Recipe(start=str(TINY), steps=steps, batch=4, bf16=False, save_every=2, samples_every=0)
    start, data = tiny_on(shapes)
    one = finetune(recipe, data, start)
    out = tmp_path / "ray-model"
    done, killed = threading.Event(), []

    def kill_a_worker_once() -> None:
        while not done.is_set():
            workers = _ray_train_workers() if registered.exists() else []
            if workers:
                os.kill(workers[-1], signal.SIGKILL)
                killed.append(workers[-1])
                return
            done.wait(0.05)

    killer = threading.Thread(target=kill_a_worker_once, daemon=True)
    killer.start()
    flags = ["--steps", str(steps), "--batch", "4", "--no-bf16", "--save-every", "2", "--samples-every", "0"]
    flags += ["--threads", "1"]
    try:
        code = main([str(shapes), "--from", str(TINY), "--out", str(out), *flags, "--ray", "local", "--workers", "2"])
    finally:
        done.set()
        ray.shutdown()
    assert code == 0 and killed
    progress = read_state(out / "training_state.pt")["progress"]
    assert progress["step"] == steps and progress["starts"][0] == 0 and progress["starts"][-1] >= 2  # resumed
    ray_curve = [row["loss"] for row in progress["losses"]]
    np.testing.assert_allclose(ray_curve, [row["loss"] for row in one.losses], rtol=2e-3)
    assert Editor.from_pretrained(out, device="cpu").class_names == ["blue bar", "green square", "red disc"]
