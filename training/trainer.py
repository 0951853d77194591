"""The training loop: DRAGAN + ACGAN on a packed set, on one CPU, one GPU or many (torchrun).

One step:
  1. draw noise and labels, G makes a batch of fakes;
  2. D sees [real, fake] in one DDP forward (through the DiffAugment policy, if any) and the perturbed
     reals in a plain forward; its loss adds the tag loss on real images and the DRAGAN penalty on the
     perturbed ones (every `gp_every` steps, weighted by it: lazy regularisation). The DCGAN baseline has
     neither: lambda_gp 0, and a D without a tag head;
  3. G is scored by the updated D (called without its DDP wrapper so D's gradients are neither computed
     nor all-reduced) and steps;
  4. the EMA copy of G follows. Before G_ema is sampled, evaluated or saved, its BatchNorm statistics can be
     re-estimated on G_ema itself (`standing_stats`): the copied ones belong to G's current weights.
"""
from __future__ import annotations

import copy
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from common.packed import PackedSet
from common.vocab import Vocabulary
from training.augment import augment, parse_policy
from training.checkpoint import (list_checkpoints, load_state, resolve_checkpoint, save_checkpoint, step_of,
                                 steps_before, total_steps)
from training.config import TrainConfig, boosted
from training.grid import save_grid, sample_grid_inputs
from training.losses import adv_loss, dragan_perturb, gradient_penalty, tag_loss
from training.models import WEIGHTLESS_FIELDS, standing_statistics
from training.networks import create_discriminator, create_generator, load_across_vocabularies
from training.run import RunFolder, check_same_model, check_same_tags
from training.teacher import TeacherLoss, pin_teacher


# Scores G_ema and returns its figures, "score" (lower is better) among them; from the caller (metrics sit above).
Evaluate = Callable[[torch.nn.Module], dict]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the models were rolled back to the last good checkpoint."""


class Trainer:
    def __init__(self, cfg: TrainConfig, data: str | Path, run_dir: str | Path, resume: bool = False,
                 device: str | None = None, init: str | Path | None = None, evaluate: Evaluate | None = None):
        self.cfg, self.run_dir, self.run = cfg, Path(run_dir), RunFolder(run_dir)
        self.evaluate = evaluate
        self.distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        self.rank, self.world = 0, 1
        if self.distributed:
            backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
            dist.init_process_group(backend)
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":   # under torchrun each process takes its own GPU, not all of them GPU 0
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.amp = cfg.amp and self.device.type == "cuda"

        self.data = PackedSet.open(data)
        if self.data.resolution != cfg.model.resolution:
            raise ValueError(f"{data}: images are {self.data.resolution} px but config {cfg.name!r} trains "
                             f"{cfg.model.resolution} px; pack at that size or set model.resolution")
        self.vocab = self.data.vocab
        self.train_idx = self.data.indices("train")
        self.priors = self.data.priors(self.train_idx)   # the data's, saved; training draws by tag_boost's:
        self.label_priors, self.batch_p = boosted(cfg.boosts, self.priors, self.data.labels[self.train_idx], self.vocab)
        self.lambda_adv, self.policy = cfg.lambda_adv or float(len(self.vocab)), parse_policy(cfg.augment)

        torch.manual_seed(cfg.seed)
        self.G = create_generator(cfg.model, len(self.vocab)).to(self.device, memory_format=torch.channels_last)
        self.D = create_discriminator(cfg.model, len(self.vocab)).to(self.device, memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        if self.distributed and self.D.apart:
            raise ValueError(f"{cfg.name}: a D that judges real and fake apart (DCGAN) trains on one device only")
        if cfg.teacher:
            self.cfg = cfg = replace(cfg, teacher=self._pin_teacher(cfg.teacher, resume))
        self.g_terms = [TeacherLoss(cfg.teacher, cfg, self.vocab, self.device)] if cfg.teacher else []
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2),
                **({"fused": True} if self.device.type == "cuda" else {"foreach": True})}
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        # Every random draw goes through these two generators, so a resumed run repeats exactly.
        self.rng = np.random.default_rng(cfg.seed * 1000 + self.rank)         # batches and labels
        self.dev_gen = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + self.rank + 1)
        self.step, self._standing = 0, None
        self.steps_before = 0           # steps the weights had before this run (`--init`); 0 from scratch
        self.wall_offset = 0.0          # training seconds before this process (from metrics.jsonl on resume)
        if init is not None:
            if resume:
                raise ValueError("--init starts a new run from another run's weights; drop it to --resume this one")
            self.init_from(resolve_checkpoint(init))
        self._prepare_run_dir(resume)

        self.G_train = DDP(self.G) if self.distributed else self.G
        self.D_train = DDP(self.D) if self.distributed else self.D
        if cfg.compile:
            # G only: D's gradient penalty needs a double backward, which compiled graphs cannot give.
            self.G_train = torch.compile(self.G_train)

    def _pin_teacher(self, spec: str, resume: bool) -> str:
        """`training.teacher.pin_teacher`, decided once for all ranks: under torchrun rank 0 alone looks and every
        rank takes its answer (or its error); ranks that looked each for themselves could pin different
        checkpoints if the teacher run saved one between their looks."""
        if not self.distributed:
            return pin_teacher(spec, self.run, resume)
        answer: list = [None]
        if self.rank == 0:
            try:
                answer = [pin_teacher(spec, self.run, resume)]
            except Exception as exc:      # every rank raises it: one left waiting for the broadcast would hang
                answer = [exc]
        dist.broadcast_object_list(answer, src=0)
        if isinstance(answer[0], Exception):
            raise answer[0]
        return answer[0]

    # --- run directory, checkpoints, resume -------------------------------------------------------

    def _prepare_run_dir(self, resume: bool) -> None:
        ckpt = self.run.to_resume(resume)
        if ckpt is not None:
            check_same_model(self.cfg.model, ckpt)
            check_same_tags(self.vocab, ckpt)
            self.load(ckpt)
        if self.rank == 0:
            self.wall_offset = self.run.start(self.cfg, self.step)

    def init_from(self, ckpt: Path) -> None:
        """Start this new run from another run's G, G_ema and D, tags matched by name (optimisers start fresh).
        From a portable checkpoint, which has no G, G starts as G_ema.

        How a model trained on one vocabulary goes on to a larger one: see `load_across_vocabularies`.
        """
        check_same_model(self.cfg.model, ckpt, "start from", ignore=WEIGHTLESS_FIELDS)
        old_tags = Vocabulary.from_json(json.loads((ckpt / "vocab.json").read_text())).tags
        g_file = "G" if (ckpt / "G.safetensors").is_file() else "G_ema"
        for name, module in ((g_file, self.G), ("G_ema", self.G_ema), ("D", self.D)):
            state = load_file(str(ckpt / f"{name}.safetensors"), device=str(self.device))
            new = load_across_vocabularies(module, state, list(old_tags), list(self.vocab.tags))
        self.steps_before = total_steps(ckpt)
        if self.rank == 0:
            print(f"kyara train: starting from {ckpt} (step {self.steps_before} in all); new tags: "
                  f"{', '.join(new) or 'none'}", file=sys.stderr)

    def load(self, ckpt: Path) -> None:
        for name, module in (("G", self.G), ("G_ema", self.G_ema), ("D", self.D)):
            module.load_state_dict(load_file(str(ckpt / f"{name}.safetensors"), device=str(self.device)))
        state = load_state(ckpt / "state.pt")
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.steps_before = state["step"], steps_before(ckpt)
        rng = state["rng"][self.rank] if self.rank < len(state["rng"]) else None
        if rng is not None:
            self.rng.bit_generator.state = rng["cpu"]
            self.dev_gen.set_state(rng["dev"])
            torch.set_rng_state(rng["torch"])

    def save(self) -> Path | None:
        if self.distributed:
            # DDP broadcasts G's BatchNorm statistics at each forward, but every rank then updates them
            # with its own batch: make rank 0's the ones that are saved and kept everywhere.
            for buffers in (self.G.buffers(), self.G_ema.buffers()):
                for buf in buffers:
                    dist.broadcast(buf, src=0)
        rng = {"cpu": self.rng.bit_generator.state, "dev": self.dev_gen.get_state(), "torch": torch.get_rng_state()}
        all_rng = [None] * self.world if self.distributed else [rng]
        if self.distributed:
            dist.all_gather_object(all_rng, rng)
        path = None
        if self.rank == 0:
            path = save_checkpoint(
                self.run_dir, self.step, {"G": self.G, "G_ema": self.G_ema, "D": self.D},
                {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": all_rng},
                self.cfg, self.vocab, self.priors.tolist(), self.cfg.keep_last, self.run.best(), self.steps_before)
        if self.distributed:
            dist.barrier()
        return path

    # --- one step ---------------------------------------------------------------------------------

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        pick = (self.rng.integers(len(self.train_idx), size=self.cfg.batch_size) if self.batch_p is None
                else self.rng.choice(len(self.train_idx), size=self.cfg.batch_size, p=self.batch_p))
        idx = np.sort(self.train_idx[pick])
        images = torch.from_numpy(np.ascontiguousarray(self.data.images[idx]))
        labels = torch.from_numpy(self.data.labels[idx])
        images = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
        return images.contiguous(memory_format=torch.channels_last), labels.to(self.device, non_blocking=True)

    def train_step(self) -> dict[str, torch.Tensor]:
        cfg, b = self.cfg, self.cfg.batch_size
        real, real_labels = self._real_batch()
        fake_labels = torch.from_numpy(self.vocab.sample_labels(self.label_priors, b, self.rng)).to(self.device)
        # What a projection D reads of the fakes' tags: each fake hides the tags its real partner's label leaves
        # unknown, lest D tell the two kinds apart by which tags are known (G still draws them all).
        seen_fake_labels = torch.where(real_labels >= 0, fake_labels.to(real_labels.dtype), -1)
        noise = torch.randn(b, cfg.model.noise_dim, generator=self.dev_gen, device=self.device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

        with autocast:
            fake = self.G_train(noise, fake_labels)
        # D's inputs, real and fake alike, go through the same kind of random transforms (none by default).
        both = augment(torch.cat([real, fake.detach().to(real.dtype)]), self.policy, self.dev_gen)
        penalise = cfg.lambda_gp > 0 and self.step % cfg.gp_every == 0
        no_tags = torch.zeros((), device=self.device)   # the tag loss of a D without a tag head (DCGAN)
        with autocast:
            if self.D.apart:     # BatchNorm in D (DCGAN): real and fake normalised together would give them away
                (adv_real, tags), (adv_fake, _) = self.D_train(both[:b]), self.D_train(both[b:])
            else:
                adv, tags = self.D_train(both, torch.cat([real_labels, seen_fake_labels]))
                adv_real, adv_fake = adv.split(b)
            loss_d_adv = adv_loss(adv_real, True) + adv_loss(adv_fake, False)
            loss_d_tag = tag_loss(tags[:b], real_labels) if tags is not None else no_tags
        loss_d = self.lambda_adv * loss_d_adv + loss_d_tag
        extra = {}
        if penalise:
            x_hat = dragan_perturb(both[:b], self.dev_gen)
            with autocast:
                # The perturbed batch goes through the plain D: its gradient reaches D's parameters in the one
                # backward below (DDP all-reduces it); the double backward spans this batch alone. (A copy, not the
                # leaf: tools that hook inputs, as FlopCounterMode, put hooks on leaves that autograd.grad cannot run.)
                adv_hat, _ = self.D(x_hat.clone(), real_labels)
            gp = gradient_penalty(adv_hat, x_hat)
            # Lazy regularisation: every k-th step with k times the weight keeps the same average pressure.
            loss_d = loss_d + cfg.lambda_gp * cfg.gp_every * gp
            extra["gp"] = gp.detach()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        with autocast:
            adv_g, tags_g = self.D(augment(fake, self.policy, self.dev_gen), seen_fake_labels)   # plain D: no sync
            loss_g_adv = adv_loss(adv_g, True)
            loss_g_tag = tag_loss(tags_g, fake_labels) if tags_g is not None else no_tags
        loss_g = self.lambda_adv * loss_g_adv + loss_g_tag
        for term in self.g_terms:        # more loss terms of G: distillation from a teacher
            with autocast:
                value = term(fake, noise, fake_labels)
            loss_g = loss_g + term.weight * value
            extra[term.name] = value.detach()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(self.G.parameters()))
        self.opt_g.step()
        self._update_ema()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "d_adv": loss_d_adv.detach(),
                "d_tag_real": loss_d_tag.detach(), **extra, "g_adv": loss_g_adv.detach(),
                "g_tag_fake": loss_g_tag.detach()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up: early on the average would be mostly the random initial weights, so follow G closely.
        decay = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        ema_params, params = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1 - decay)
        for ema_buf, buf in zip(self.G_ema.buffers(), self.G.buffers()):
            ema_buf.copy_(buf)

    # --- the loop ---------------------------------------------------------------------------------

    def fit(self, steps: int | None = None) -> None:
        """Train until `steps` (default: the config's) and save a final checkpoint."""
        cfg = self.cfg
        total = steps or cfg.steps
        if self.step >= total:
            if self.rank == 0:
                print(f"train: {self.run_dir} is already at step {self.step} (target {total}); nothing to do. "
                      "Pass a larger --steps to continue it.", file=sys.stderr)
            return
        fixed_noise, fixed_labels, rows = sample_grid_inputs(self.vocab, self.priors, cfg.model.noise_dim, cfg.seed)
        with tqdm(total=total, initial=self.step, desc="train", unit="step", disable=self.rank != 0,
                  dynamic_ncols=True) as bar:   # closed on errors too
            sums: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}     # a lazy penalty is in some steps' losses only
            first_bad = torch.tensor(-1, device=self.device)
            fit_start = window_start = time.perf_counter()
            window_steps = 0
            while self.step < total:
                losses = self.train_step()
                self.step += 1
                window_steps += 1
                finite = torch.isfinite(losses["loss_d"]) & torch.isfinite(losses["loss_g"])
                first_bad = torch.where((first_bad < 0) & ~finite, torch.tensor(self.step, device=self.device), first_bad)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0) + v.float()
                    counts[k] = counts.get(k, 0) + 1
                bar.update(1)
                evaluating = self.evaluate is not None and cfg.eval_every > 0 and self.step % cfg.eval_every == 0
                # An evaluated step is saved too, so that best.json can name it.
                at_ckpt = self.step % cfg.ckpt_every == 0 or self.step == total or evaluating
                at_sample = self.step % cfg.sample_every == 0 or self.step == total
                if self.step % cfg.log_every == 0 or at_ckpt or at_sample:
                    # Before anything is written: a NaN must never reach a log line, a grid or a checkpoint.
                    self._check_finite(first_bad, losses)
                if self.step % cfg.log_every == 0 or at_ckpt:
                    elapsed = time.perf_counter() - window_start
                    record = {k: float(v) / counts[k] for k, v in sums.items()}
                    record.update(step=self.step, images_per_s=window_steps * cfg.batch_size * self.world / elapsed,
                                  wall_s=round(self.wall_offset + time.perf_counter() - fit_start, 2))
                    bar.set_postfix(d=f"{record['loss_d']:.3f}", g=f"{record['loss_g']:.3f}",
                                    img_s=f"{record['images_per_s']:.0f}")
                    if self.rank == 0:
                        self.run.log(record)
                    sums, counts, window_start, window_steps = {}, {}, time.perf_counter(), 0
                if (at_sample or at_ckpt) and cfg.standing_stats:
                    # Every rank, with the same noise: the buffers stay equal across ranks.
                    standing_statistics(self.G_ema, self._standing_inputs())
                if self.rank == 0 and at_sample:
                    with torch.no_grad():
                        images = self.G_ema(fixed_noise.to(self.device), fixed_labels.to(self.device))
                    save_grid(images, self.run_dir / "samples" / f"step_{self.step:07d}.png", rows)
                if at_ckpt:
                    figures = self._evaluate() if evaluating else None
                    saved = self.save()
                    if figures is not None:
                        self.run.mark_if_best(saved, self.step, figures["score"])

    def _standing_inputs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed noise and prior-drawn labels for re-estimating G_ema's BatchNorm statistics.

        Drawn from their own seed, not the training generators, so that turning the switch on or off leaves
        the training trajectory alone, and a resumed run still repeats exactly.
        """
        if self._standing is None:
            rng = np.random.default_rng(self.cfg.seed + 777)
            b, z = self.cfg.batch_size, self.cfg.model.noise_dim
            self._standing = [
                (torch.from_numpy(rng.standard_normal((b, z), dtype=np.float32)).to(self.device),
                 torch.from_numpy(self.vocab.sample_labels(self.priors, b, rng)).to(self.device))
                for _ in range(self.cfg.standing_stats)]
        return self._standing

    # --- evaluation -------------------------------------------------------------------------------

    def _evaluate(self) -> dict | None:
        """Score G_ema (rank 0) with the run's `evaluate` and log the figures to metrics.jsonl."""
        if self.rank != 0:
            return None
        figures = self.evaluate(self.G_ema)
        self.run.log({"step": self.step, "eval": figures})
        return figures

    def _check_finite(self, first_bad: torch.Tensor, losses: dict[str, torch.Tensor]) -> None:
        """Roll back and stop if any rank saw a non-finite loss since the last check. All ranks decide together
        (the step flag is all-reduced): a rank that stopped alone would leave the others waiting in a collective."""
        if self.distributed:
            none = torch.iinfo(torch.int64).max
            earliest = torch.where(first_bad < 0, none, first_bad)
            dist.all_reduce(earliest, op=dist.ReduceOp.MIN)
            first_bad = torch.where(earliest == none, -1, earliest)
        first_bad = int(first_bad)
        if first_bad < 0:
            return
        found = list_checkpoints(self.run_dir)
        if found:
            self.load(found[-1])
            where = f"rolled back to {found[-1]} (step {step_of(found[-1])}); nothing after it was written"
        else:
            where = "there is no checkpoint to roll back to; nothing was written"
        values = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
        raise TrainingDiverged(f"non-finite loss at step {first_bad} ({values}); {where}. "
                               "Lower the learning rate and resume with --resume.")

    def close(self) -> None:
        if self.distributed:
            dist.destroy_process_group()


def train(cfg: TrainConfig, data: str | Path, run_dir: str | Path, resume: bool = False,
          device: str | None = None, steps: int | None = None, init: str | Path | None = None,
          evaluate: Evaluate | None = None) -> Path:
    """Train `cfg` on the packed set `data` into `run_dir`. `evaluate` scores G_ema every `cfg.eval_every` steps
    (`metrics.evaluate.training_evaluator` makes the one `kyara train` passes); without it nothing is scored."""
    if steps is not None and steps < 1:      # before the run directory is made
        raise ValueError(f"--steps must be at least 1, got {steps}")
    trainer = Trainer(cfg, data, run_dir, resume=resume, device=device, init=init, evaluate=evaluate)
    try:
        trainer.fit(steps)
    finally:
        trainer.close()
    return Path(run_dir)
