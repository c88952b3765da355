"""Train the class-conditional VAR transformer on the token maps of a trained VQVAE.

    python -m training.train_var --data data/emoji --vqvae runs/demo/vqvae/vqvae.safetensors \
        --out runs/demo/var [--minutes M] [--resume]

The train split (plus horizontal flips) is tokenized once; training is teacher-forced cross-entropy
over all scales with class dropout (so classifier-free guidance works), bf16 autocast on the CPU.
Writes `<out>/last.pt` for --resume and exports `<out>/var.safetensors` (float16) for `var_core.load_var`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.image_folder import load_image_folder
from training.train_vqvae import Budget, add_run_arguments, cosine_lr, save_state, to_model_input
from var_core import VAR, VQVAE, load_vqvae, save_checkpoint


def display_names(data: Path, slugs: list[str]) -> list[str]:
    """Human-readable class names in index order, from `<data>/classes.json` when it names the slugs."""
    path = data / "classes.json"
    if path.exists():
        by_slug = {c["slug"]: c["name"] for c in json.loads(path.read_text())}
        if all(s in by_slug for s in slugs):
            return [by_slug[s] for s in slugs]
    return slugs


@torch.no_grad()
def tokenize(vqvae: VQVAE, images: torch.Tensor, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, H, W) -> (tokens (N, L) int64, teacher-forcing inputs (N, L - pn_0^2, Cvae) float32)."""
    tokens, inputs = [], []
    for chunk in tqdm(images.split(batch_size), desc="tokenize", dynamic_ncols=True):
        maps = vqvae.encode(to_model_input(chunk))
        tokens.append(torch.cat(maps, dim=1))
        inputs.append(vqvae.quantize.teacher_forcing_input(maps))
    return torch.cat(tokens), torch.cat(inputs)


@torch.no_grad()
def per_scale_accuracy(
    var: VAR,
    labels: torch.Tensor,
    tokens: torch.Tensor,
    inputs: torch.Tensor,
    batch_size: int = 128,
) -> tuple[list[float], float]:
    """Teacher-forced top-1 accuracy of each scale and mean cross-entropy over all positions."""
    var.eval()
    correct, loss_sum = torch.zeros(var.L), 0.0
    for lab, tok, inp in zip(labels.split(batch_size), tokens.split(batch_size), inputs.split(batch_size), strict=True):
        logits = var(lab, inp)
        correct += (logits.argmax(-1) == tok).float().sum(0)
        loss_sum += F.cross_entropy(logits.transpose(1, 2), tok, reduction="sum").item()
    var.train()
    correct /= len(labels)
    return [correct[b:e].mean().item() for b, e in var.begin_ends], loss_sum / tokens.numel()


def _optimizer(var: VAR, args: argparse.Namespace) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on embeddings, positions, norms or biases)."""

    def decays(name: str, p: torch.nn.Parameter) -> bool:
        return p.ndim >= 2 and "emb" not in name and "pos_" not in name

    decay = [p for n, p in var.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in var.named_parameters() if not decays(n, p)]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), foreach=True)


def _resume(ckpt_path: Path, var: VAR, opt: torch.optim.Optimizer, gen: torch.Generator) -> tuple[int, float]:
    """Restore weights, optimizer and RNG state from `last.pt` -> (step, elapsed seconds)."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    var.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    gen.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    print(f"resumed from {ckpt_path} at step {ckpt['step']} ({ckpt['elapsed'] / 60:.1f} min)")
    return ckpt["step"], ckpt["elapsed"]


def train(args: argparse.Namespace) -> None:
    """Tokenize `<data>/train`, train VAR, report per-scale accuracy on `<data>/val`, export the weights."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal Adam moments slow CPU training by an order of magnitude
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    vqvae = load_vqvae(args.vqvae)
    size = vqvae.image_size
    x_train, y_train, class_names = load_image_folder(data / "train", size)
    x_val, y_val, _ = load_image_folder(data / "val", size)
    x_train = torch.cat((x_train, x_train.flip(-1)))
    y_train = torch.cat((y_train, y_train))
    tok_train, inp_train = tokenize(vqvae, x_train)
    tok_val, inp_val = tokenize(vqvae, x_val)

    var = VAR(
        vocab_size=vqvae.vocab_size,
        z_channels=vqvae.Cvae,
        depth=args.depth,
        embed_dim=args.embed_dim,
        num_heads=args.num_heads,
        num_classes=len(class_names),
        patch_nums=vqvae.patch_nums,
    )
    var.compute_dtype = torch.bfloat16 if args.bf16 else torch.float32
    opt = _optimizer(var, args)
    steps_per_epoch = len(tok_train) // args.batch_size
    total_steps = args.epochs * steps_per_epoch
    ckpt_path = out / "last.pt"
    step, elapsed = _resume(ckpt_path, var, opt, gen) if args.resume and ckpt_path.exists() else (0, 0.0)
    n_params = sum(p.numel() for p in var.parameters())
    print(
        f"{len(tok_train)} train sequences (with flips) / {len(tok_val)} val, L={var.L}, "
        f"{n_params / 1e6:.2f}M parameters, {steps_per_epoch} steps/epoch, up to {total_steps} steps"
        + (f" or {args.minutes} min" if args.minutes else "")
    )

    budget = Budget(total_steps, args.minutes, elapsed)

    def checkpoint() -> None:
        save_state(
            ckpt_path,
            {
                "model": var.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "elapsed": budget.elapsed,
                "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "args": vars(args),
            },
        )

    var.train()
    bar = tqdm(total=total_steps, initial=step, desc="var", dynamic_ncols=True, mininterval=5)
    while budget.progress(step) < 1:
        for g in opt.param_groups:
            g["lr"] = cosine_lr(args.lr, budget.progress(step), warmup=args.warmup)
        idx = torch.randint(0, len(tok_train), (args.batch_size,), generator=gen)
        labels = y_train[idx].clone()
        labels[torch.rand(args.batch_size, generator=gen) < args.class_dropout] = var.num_classes
        logits = var(labels, inp_train[idx])
        loss = F.cross_entropy(logits.transpose(1, 2), tok_train[idx], label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(var.parameters(), 2.0)
        opt.step()
        step += 1
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(
                loss=f"{loss.item():.3f}",
                lr=f"{opt.param_groups[0]['lr']:.1e}",
                min=f"{budget.elapsed / 60:.1f}",
            )
        if step % args.save_every == 0:
            checkpoint()
        if step % args.eval_every == 0:
            accs, val_loss = per_scale_accuracy(var, y_val, tok_val, inp_val)
            bar.write(f"step {step}: val loss {val_loss:.3f}, per-scale acc " + " ".join(f"{a:.2f}" for a in accs))
    bar.close()
    checkpoint()
    accs, val_loss = per_scale_accuracy(var, y_val, tok_val, inp_val)
    save_checkpoint(var, out / "var.safetensors", dtype=torch.float16)
    summary = {
        "steps": step,
        "minutes": round(budget.elapsed / 60, 2),
        "val_loss": round(val_loss, 4),
        "val_per_scale_accuracy": {str(pn): round(a, 4) for pn, a in zip(var.patch_nums, accs, strict=True)},
        "config": var.config,
        "class_names": class_names,
        "args": vars(args),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=list))
    (out / "classes.json").write_text(json.dumps(display_names(data, class_names), indent=2) + "\n")
    print(f"done: {step} steps in {budget.elapsed / 60:.1f} min; val loss {val_loss:.3f}")
    for pn, a in zip(var.patch_nums, accs, strict=True):
        print(f"  scale {pn}x{pn}: teacher-forced top-1 accuracy {a:.3f}")
    print(f"exported {out / 'var.safetensors'}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description="Train the VAR transformer on VQVAE tokens")
    add_run_arguments(p, out="runs/demo/var", epochs=100, eval_every=500)
    p.add_argument("--vqvae", required=True, help="VQVAE .safetensors from training.train_vqvae")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--embed-dim", type=int, default=256)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.03, help="warm-up as a fraction of the budget")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--class-dropout", type=float, default=0.1, help="probability of the unconditional label")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast (AMX matmuls)")
    train(p.parse_args(argv))


if __name__ == "__main__":
    main()
