"""Measure a fine-tuned model folder against its start on held-out pictures of its classes.

    python -m training.measure_finetune --before demo --after runs/fluent --heldout data/fluent/heldout \
        --train data/fluent/train

(a) the VQVAE decoder's PSNR on the held-out pictures, before and after; (b) a small classifier
(`training.classifier.EmojiClassifier`) trained on the held-out pictures judges samples of every class: the
share it recognises, per class. "Before" samples the start model's own class of the same display name (the
demo has the emoji categories), where it has one. Writes `<after>/measured.md` (the table, which the model card
shows) and `<after>/measured.json`, and prints the table. (c) the transformer's teacher-forced cross-entropy
(nats per token over all scales, no label smoothing: `training.finetune.evaluate_loss`) on the held-out
pictures, each with its class (before: the start model's class of the same name), the most sensitive of the
three: it needs no sampling and no judge.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.class_folder import ClassFolder, load_class_folder
from training.classifier import EmojiClassifier, augment, classify
from training.finetune import StartPoint, evaluate_loss, load_start
from training.run_folder import model_card
from training.train_vqvae import evaluate_psnr
from var_core import SamplingOptions, generate


def train_judge(images: torch.Tensor, labels: torch.Tensor, classes: int, epochs: int, seed: int) -> EmojiClassifier:
    """The classifier of training/classifier.py, trained on uint8 images (N, 3, 64, 64) with flips and shifts."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = EmojiClassifier(classes)
    steps = epochs * -(-len(labels) // 32)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(labels), generator=gen).split(32):
            loss = F.cross_entropy(model(augment(images[idx].float() / 255, gen)), labels[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def recognised(
    judge: EmojiClassifier, start: StartPoint, class_ids: list[int | None], per_class: int, seed: int
) -> list[float | None]:
    """Share of `per_class` samples of each model class id (None: the model lacks it) judged as that row's class."""
    opts = {k: start.defaults[k] for k in ("cfg", "top_k", "top_p", "more_smooth") if k in start.defaults}
    start.var.eval()
    start.vqvae.eval()
    out: list[float | None] = []
    for row, cid in enumerate(class_ids):
        if cid is None:
            out.append(None)
            continue
        labels = torch.full((per_class,), cid)
        gen = torch.Generator().manual_seed(seed + row)
        images = generate(start.var, start.vqvae, labels, SamplingOptions(**opts), gen)
        out.append((classify(judge, images) == row).float().mean().item())
    return out


def heldout_cross_entropy(model: StartPoint, held: ClassFolder, class_ids: list[int | None]) -> float | None:
    """Teacher-forced cross-entropy of `model` (nats per token, all scales, no label smoothing) on the held-out
    pictures, each labelled class_ids[its class]; pictures of a class the model lacks (None) are left out, and
    None is returned when none is left."""
    ids = torch.tensor([-1 if c is None else c for c in class_ids])
    labels = ids[held.labels]
    keep = labels >= 0
    if not keep.any():
        return None
    return evaluate_loss(model, dataclasses.replace(held, images=held.images[keep], labels=labels[keep]), ("var",))


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _nats(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run (a), (b) and (c); returns what measured.json holds."""
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    before, after = load_start(args.before), load_start(args.after)
    held = load_class_folder(args.heldout, after.model.vqvae.image_size, say=lambda _: None)
    classes = held.class_names
    if classes != after.class_names:
        raise SystemExit(f"The held-out classes {classes} are not the model's {after.class_names}.")
    psnr = {name: evaluate_psnr(m.vqvae, held.images)[0] for name, m in (("before", before), ("after", after))}
    judge = train_judge(held.images, held.labels, len(classes), args.epochs, args.seed)
    ceiling = None
    if args.train:
        train = load_class_folder(args.train, after.model.vqvae.image_size, say=lambda _: None)
        ceiling = (classify(judge, train.images) == train.labels).float().mean().item()
    own = {name: i for i, name in enumerate(before.class_names)}
    ids = {"before": [own.get(c) for c in classes], "after": list(range(len(classes)))}
    ce = {name: heldout_cross_entropy(m, held, ids[name]) for name, m in (("before", before), ("after", after))}
    acc_before = recognised(judge, before, ids["before"], args.per_class, args.seed)
    acc_after = recognised(judge, after, ids["after"], args.per_class, args.seed)
    rows = [f"| {c} | {_pct(b)} | {_pct(a)} |" for c, b, a in zip(classes, acc_before, acc_after, strict=True)]
    table = "\n".join(
        [
            f"Held-out pictures: {len(held.labels)} ({args.heldout}); {args.per_class} samples per class with the "
            "model's defaults; seconds to measure: {seconds}.",
            "",
            "| measure | before | after |",
            "|---|---|---|",
            f"| (a) decoder PSNR on the held-out pictures | {psnr['before']:.2f} dB | {psnr['after']:.2f} dB |",
            f"| (b) samples recognised by the judge, mean over classes | {_pct(_mean(acc_before))} | "
            f"{_pct(_mean(acc_after))} |",
            *rows,
            f"| (c) transformer cross-entropy on the held-out pictures, nats per token | {_nats(ce['before'])} | "
            f"{_nats(ce['after'])} |",
            "",
            "The judge is a small CNN trained on the held-out pictures only"
            + (
                f"; on the {len(train.labels)} training pictures it scores {_pct(ceiling)}, the ceiling to read "
                "the sample scores against."
                if ceiling is not None
                else "."
            ),
            f"Before: the start model {args.before} with its own class of the same name, for (b) and (c); chance "
            f"in (b) is {_pct(1 / len(classes))}. (c) is teacher-forced, all scales, no label smoothing: lower is "
            "better.",
        ]
    )
    seconds = round(time.perf_counter() - t0)
    table = table.replace("{seconds}", str(seconds))
    result = {
        "psnr": psnr,
        "cross_entropy": ce,
        "before": acc_before,
        "after": acc_after,
        "classes": classes,
        "ceiling": ceiling,
    }
    out = Path(args.after)
    (out / "measured.md").write_text(table + "\n")
    (out / "measured.json").write_text(json.dumps(result, indent=2) + "\n")
    run_file = out / "run.json"
    if run_file.is_file():
        run = json.loads(run_file.read_text())
        run["measured"] = table
        run_file.write_text(json.dumps(run, indent=2) + "\n")
        (out / "MODEL_CARD.md").write_text(model_card(run))
    print(table)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="demo", help="the start model")
    p.add_argument("--after", required=True, help="the fine-tuned model folder")
    p.add_argument("--heldout", required=True, help="held-out class folder (the same class folders)")
    p.add_argument("--train", default=None, help="the training class folder (for the judge's ceiling)")
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--epochs", type=int, default=15, help="the judge's training epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    measure(p.parse_args(argv))


if __name__ == "__main__":
    main()
