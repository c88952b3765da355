"""Train the multi-scale VQVAE on an image folder (CPU-friendly: channels_last, optional bf16 autocast).

    python -m training.train_vqvae --data data/emoji --out runs/demo/vqvae [--minutes M | --epochs E] [--resume]

Writes `<out>/last.pt` (model + optimizer + step, for --resume) every --save-every steps and at the end,
and exports `<out>/vqvae.safetensors` (float16, config in the metadata) for `var_core.load_vqvae`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.image_folder import load_image_folder
from var_core import VQVAE, save_checkpoint


def cosine_lr(base_lr: float, progress: float, warmup: float = 0.02, final_ratio: float = 0.05) -> float:
    """Learning rate at `progress` in [0, 1]: linear warm-up, then cosine decay to final_ratio * base_lr."""
    if progress < warmup:
        return base_lr * max(progress / warmup, 0.01)
    t = min((progress - warmup) / (1 - warmup), 1.0)
    return base_lr * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


class Budget:
    """Training progress in [0, 1] from whichever limit comes first: steps or wall-clock minutes."""

    def __init__(self, total_steps: int, minutes: float | None, elapsed: float = 0.0):
        self.total_steps, self.seconds = (
            total_steps,
            (minutes * 60 if minutes else None),
        )
        self.start = time.perf_counter() - elapsed

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def progress(self, step: int) -> float:
        p = step / self.total_steps
        if self.seconds:
            p = max(p, self.elapsed / self.seconds)
        return min(p, 1.0)


def add_run_arguments(p: argparse.ArgumentParser, out: str, epochs: int, eval_every: int) -> None:
    """The arguments both trainers share: data, output folder, budget (minutes or epochs), resume, saving,
    evaluation, seed and threads; each trainer adds its own model and optimiser arguments and `--bf16`."""
    p.add_argument("--data", default="data/emoji", help="dataset with train/ and val/ class folders")
    p.add_argument("--out", default=out)
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget; stops cleanly and saves")
    p.add_argument("--epochs", type=int, default=epochs, help="step budget in epochs (whichever limit comes first)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=eval_every)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)


def to_model_input(images: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 in [-1, 1], channels_last; `flip` (B,) bool mirrors rows horizontally."""
    x = images.float().div(127.5).sub(1)
    if flip is not None:
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x.contiguous(memory_format=torch.channels_last)


def gradient_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 distance between horizontal and vertical finite differences (an edge-sharpness term)."""
    loss = recon.new_zeros(())
    for dim in (-1, -2):
        loss = loss + F.l1_loss(recon.diff(dim=dim), target.diff(dim=dim))
    return loss


def reconstruct(
    model: VQVAE, x: torch.Tensor, bf16: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training pass with the quantizer in float32: x in [-1, 1] -> (recon float32, vq loss, usage (V,), latent f).

    Same computation as `VQVAE.forward`, but the decoder also runs under bf16 autocast.
    """
    model.compute_dtype = torch.bfloat16 if bf16 else torch.float32
    f = model.encode_latent(x)  # autocast inside; returns float32
    f_hat, vq_loss, usage = model.quantize.straight_through(f)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        recon = model.decoder(model.post_quant_conv(f_hat))
    return recon.float(), vq_loss, usage, f


@torch.no_grad()
def reinit_dead_codes(
    model: VQVAE,
    usage_ema: torch.Tensor,
    latents: torch.Tensor,
    threshold: float,
    generator: torch.Generator,
) -> int:
    """Replace codes with usage EMA < threshold by random vectors of the batch latent (B, Cvae, h, w); returns count."""
    dead = (usage_ema < threshold).nonzero().flatten()
    if dead.numel() == 0:
        return 0
    # Residuals at all scales are smaller than f itself: draw from f and from scaled-down copies.
    vecs = latents.float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    pick = torch.randint(0, vecs.shape[0], (dead.numel(),), generator=generator)
    shrink = torch.rand(dead.numel(), 1, generator=generator).mul(0.9).add(0.1)
    model.quantize.embedding.weight.data[dead] = vecs[pick] * shrink
    usage_ema[dead] = threshold * 4  # grace period before it can be declared dead again
    return int(dead.numel())


@torch.no_grad()
def evaluate_psnr(model: VQVAE, images: torch.Tensor, batch_size: int = 64) -> tuple[float, float, torch.Tensor]:
    """Quantized reconstruction in float32 of uint8 images (N, 3, H, W) -> (mean PSNR in dB on [0, 1],
    codebook usage fraction, the reconstructions (N, 3, H, W) float in [0, 1])."""
    was_training = model.training
    model.eval()
    model.compute_dtype = torch.float32
    psnrs, recons, used = [], [], torch.zeros(model.vocab_size, dtype=torch.bool)
    for chunk in images.split(batch_size):
        x = to_model_input(chunk)
        tokens = model.encode(x)
        for t in tokens:
            used[t.flatten()] = True
        recon = model.decode(tokens)
        mse = ((recon - x).div(2).square()).flatten(1).mean(1).clamp_min(1e-10)
        psnrs.append(-10 * mse.log10())
        recons.append(recon.add(1).div(2).clamp(0, 1))
    model.train(was_training)
    return torch.cat(psnrs).mean().item(), used.float().mean().item(), torch.cat(recons)


def save_state(path: Path, payload: dict[str, Any]) -> None:
    """Atomic torch.save."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def build_model(args: argparse.Namespace) -> VQVAE:
    return VQVAE(
        vocab_size=args.vocab_size,
        z_channels=args.z_channels,
        ch=args.ch,
        ch_mult=tuple(args.ch_mult),
        num_res_blocks=args.num_res_blocks,
        share_quant_resi=4,
        patch_nums=tuple(args.patch_nums),
    )


def train(args: argparse.Namespace) -> None:
    """Train on `<data>/train`, report PSNR on `<data>/val`, export `<out>/vqvae.safetensors`."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal Adam moments slow CPU training by an order of magnitude
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    x_train, _, _ = load_image_folder(data / "train", args.size)
    x_val, _, _ = load_image_folder(data / "val", args.size)

    model = build_model(args).to(memory_format=torch.channels_last)
    codebook = [model.quantize.embedding.weight]
    others = [p for p in model.parameters() if p is not codebook[0]]
    opt = torch.optim.AdamW(
        [
            {"params": others, "weight_decay": args.weight_decay},
            {"params": codebook, "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.95),
        foreach=True,
    )
    steps_per_epoch = len(x_train) // args.batch_size
    total_steps = args.epochs * steps_per_epoch
    step, elapsed = 0, 0.0
    usage_ema = torch.zeros(model.vocab_size)
    ckpt_path = out / "last.pt"
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, elapsed, usage_ema = ckpt["step"], ckpt["elapsed"], ckpt["usage_ema"]
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        print(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min)")
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{len(x_train)} train / {len(x_val)} val images, {n_params / 1e6:.2f}M parameters, "
        f"{steps_per_epoch} steps/epoch, up to {total_steps} steps"
        + (f" or {args.minutes} min" if args.minutes else "")
    )

    def checkpoint() -> None:
        save_state(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "elapsed": budget.elapsed,
                "usage_ema": usage_ema,
                "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "args": vars(args),
            },
        )

    budget = Budget(total_steps, args.minutes, elapsed)
    model.train()
    bar = tqdm(total=total_steps, initial=step, desc="vqvae", dynamic_ncols=True, mininterval=5)
    threshold = args.dead_fraction * args.batch_size * sum(p * p for p in args.patch_nums) / model.vocab_size
    while budget.progress(step) < 1:
        for g in opt.param_groups:
            g["lr"] = cosine_lr(args.lr, budget.progress(step))
        idx = torch.randint(0, len(x_train), (args.batch_size,), generator=gen)
        flip = torch.rand(args.batch_size, generator=gen) < 0.5
        x = to_model_input(x_train[idx], flip)
        recon, vq_loss, usage, f = reconstruct(model, x, args.bf16)
        rec_loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + args.grad_weight * gradient_loss(recon, x)
        loss = rec_loss + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        step += 1
        usage_ema.mul_(0.95).add_(usage, alpha=0.05)
        if step % args.reinit_every == 0 and budget.progress(step) < 0.8:
            n_dead = reinit_dead_codes(model, usage_ema, f.detach(), threshold, gen)
            if n_dead:
                bar.write(f"step {step}: re-initialised {n_dead} dead codes")
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        bar.update(1)
        if step % 10 == 0:
            live = (usage_ema >= threshold).float().mean().item()
            bar.set_postfix(
                rec=f"{rec_loss.item():.4f}",
                vq=f"{vq_loss.item():.4f}",
                live=f"{live:.2f}",
                lr=f"{opt.param_groups[0]['lr']:.1e}",
                min=f"{budget.elapsed / 60:.1f}",
            )
        if step % args.save_every == 0:
            checkpoint()
        if step % args.eval_every == 0:
            psnr, used, _ = evaluate_psnr(model, x_val[: args.eval_images])
            bar.write(f"step {step}: val PSNR {psnr:.2f} dB, codebook used {used:.2f}")
    bar.close()
    checkpoint()
    psnr, used, _ = evaluate_psnr(model, x_val)
    model.compute_dtype = torch.float32
    save_checkpoint(model, out / "vqvae.safetensors", dtype=torch.float16)
    summary = {
        "steps": step,
        "minutes": round(budget.elapsed / 60, 2),
        "val_psnr_db": round(psnr, 3),
        "codebook_used_fraction": round(used, 4),
        "config": model.config,
        "args": vars(args),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=list))
    print(
        f"done: {step} steps in {budget.elapsed / 60:.1f} min; val PSNR {psnr:.2f} dB, "
        f"codebook used {used:.2f}; exported {out / 'vqvae.safetensors'}"
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description="Train the multi-scale VQVAE")
    add_run_arguments(p, out="runs/demo/vqvae", epochs=200, eval_every=250)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--grad-weight", type=float, default=0.5, help="weight of the edge (gradient) loss")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--z-channels", type=int, default=16)
    p.add_argument("--ch", type=int, default=32)
    p.add_argument("--ch-mult", type=int, nargs="+", default=[1, 2, 2])
    p.add_argument("--num-res-blocks", type=int, default=1)
    p.add_argument("--patch-nums", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8, 11, 16])
    p.add_argument("--reinit-every", type=int, default=50, help="steps between dead-code re-initialisations")
    p.add_argument(
        "--dead-fraction",
        type=float,
        default=0.03,
        help="a code is dead when its usage EMA is below this fraction of the uniform share",
    )
    p.add_argument("--eval-images", type=int, default=64)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="bf16 autocast for encoder/decoder (on the 2-core CPU its GroupNorm/conv backward was slower)",
    )
    train(p.parse_args(argv))


if __name__ == "__main__":
    main()
