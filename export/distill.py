"""A small, fast x2 upscaler distilled from the converted waifu2x one: `kyara upscaler distill` and `student`.

The teacher (`models/upscaler`, waifu2x's UpConv7) costs about a million multiply-adds per input pixel, too
many for onnxruntime-web to turn a 64 px face into 256 px while a visitor waits. The student is a member of
the same family (`export.upscaler.upconv_architecture`): a plain chain of 3x3 valid convolutions with leaky
ReLU 0.1, then the same 4x4 transposed convolution of stride 2 down to RGB, with far fewer channels. It is
trained to give the teacher's pictures, not the originals': the teacher is what the page showed and what it
is judged against.

Data: real and generated 64 px faces and the teacher's x2 (and x4) of them (`export.distill_data`).

Training: patches. Without its edge padding, the student maps an input patch of P + 2m px (m = its
convolutions + 1) to exactly the 2P px output of the patch's interior, so an edge-padded face cropped at
(y, x) lines up with the target cropped at (2y, 2x). L1 on [0, 1] values, Adam with a cosine decay over the
run's steps or minutes. The run folder holds one resumable checkpoint (checkpoint.pt), the teacher's manifest
and licence (teacher/), and val.jsonl: PSNR against the teacher on the validation faces, x2 and x4 (twice,
rounded to bytes between the passes, as the page does).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.files import atomic_path, write_text_atomic
from export.distill_data import DATA, DATA_JSON, SIZE, DataConfig, Patches, log, prepare_data, psnr
from export.manifest import MANIFEST_FILE, sha256_of

TEACHER_CHANNELS, DEFAULT_CHANNELS = (3, 16, 32, 64, 128, 256, 256), (3, 32, 32, 64, 64, 64)   # UpConv7, ours
SLOPE, CHECKPOINT, CHECKPOINT_FORMAT = 0.1, "checkpoint.pt", "kyara-upscaler-student/1"
TEACHER_DIR, VAL_LOG = "teacher", "val.jsonl"


# ---------------------------------------------------------------------------------------------- the network

def check_channels(channels: tuple[int, ...]) -> tuple[int, ...]:
    channels = tuple(int(c) for c in channels)
    if len(channels) < 2 or channels[0] != 3 or min(channels) < 1:
        raise ValueError(f"--channels must start at 3 (RGB) and name at least one convolution's width, got "
                         f"{','.join(map(str, channels))}")
    return channels


class Student(nn.Module):
    """The UpConv family with `channels` (starting at 3): 3x3 valid convolutions with leaky ReLU 0.1, then
    ConvTranspose2d(channels[-1], 3, 4, stride 2, padding 3, no bias). `forward(x)` edge-pads by `padding`
    like the exported graph (H x W in, 2H x 2W out); `forward(x, pad=False)` maps P + 2 * padding px to 2P."""

    def __init__(self, channels: tuple[int, ...] = DEFAULT_CHANNELS):
        super().__init__()
        self.channels = check_channels(channels)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3) for a, b in zip(self.channels, self.channels[1:]))
        self.up = nn.ConvTranspose2d(self.channels[-1], 3, 4, stride=2, padding=3, bias=False)
        self._start_as_bilinear()

    @torch.no_grad()
    def _start_as_bilinear(self) -> None:
        """Random widths, except that three channels of every convolution carry the RGB input through (its
        values are >= 0, which leaky ReLU leaves alone) and the transposed convolution spreads them as bilinear
        x2 does (exactly, edges included): training starts from bilinear upscaling, not from noise."""
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, a=SLOPE, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
            conv.weight[:3] = 0
            conv.weight[[0, 1, 2], [0, 1, 2], 1, 1] = 1
        taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
        self.up.weight.zero_()          # the other channels join as training finds a use for them
        self.up.weight[[0, 1, 2], [0, 1, 2]] = taps[:, None] * taps[None, :]

    @property
    def padding(self) -> int:
        return len(self.channels)          # one pixel a side per convolution, two more for the transposed one

    def forward(self, x: torch.Tensor, pad: bool = True) -> torch.Tensor:
        if pad:
            x = F.pad(x, (self.padding,) * 4, mode="replicate")
        for conv in self.convs:
            x = F.leaky_relu(conv(x), SLOPE)
        return self.up(x)

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights under the names `export.upscaler.upconv_architecture` gives them (same layouts)."""
        out = {}
        for i, conv in enumerate(self.convs, 1):
            out[f"conv{i}/W"] = conv.weight.detach().cpu().numpy().astype(np.float32)
            out[f"conv{i}/b"] = conv.bias.detach().cpu().numpy().astype(np.float32)
        out[f"conv{len(self.channels)}/W"] = self.up.weight.detach().cpu().numpy().astype(np.float32)
        return out


def macs_per_pixel(channels: tuple[int, ...]) -> tuple[int, float]:
    """Multiply-adds of the UpConv network of `channels` per input pixel and per output pixel (4 per input
    pixel), away from the edges: 9 * a * b per convolution a -> b, and 16 * C * 3 for the transposed one."""
    per_input = sum(9 * a * b for a, b in zip(channels, channels[1:])) + 16 * channels[-1] * 3
    return per_input, per_input / 4


def macs_of_face(channels: tuple[int, ...], size: int) -> int:
    """Multiply-adds of one x2 pass on a `size` px face, edge padding included (what the graph computes)."""
    side, total = size + 2 * len(channels), 0
    for a, b in zip(channels, channels[1:]):
        side -= 2
        total += side * side * 9 * a * b
    return total + side * side * 16 * channels[-1] * 3


def describe_cost(channels: tuple[int, ...]) -> list[str]:
    """Lines comparing the student's multiply-adds with the teacher's."""
    lines = []
    t_in, t_out = macs_per_pixel(TEACHER_CHANNELS)
    s_in, s_out = macs_per_pixel(channels)
    lines.append(f"multiply-adds per output pixel: teacher UpConv7 {t_out:,.0f}, student {s_out:,.0f} "
                 f"(1/{t_out / s_out:.1f}); per input pixel {t_in:,} and {s_in:,}")
    for size in (SIZE, 2 * SIZE):
        t, s = macs_of_face(TEACHER_CHANNELS, size), macs_of_face(channels, size)
        lines.append(f"one x2 pass on a {size} px face, edge padding included: teacher {t / 1e9:.2f} G, "
                     f"student {s / 1e9:.2f} G (1/{t / s:.1f})")
    return lines


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).float().div_(255)


@torch.no_grad()
def upscale(student: Student, rgb: np.ndarray, batch: int = 8) -> np.ndarray:
    """The student's x2 of N x H x W x 3 bytes, as the exported graph gives it: edge padding, clip, bytes
    (round half to even, like ONNX Round)."""
    out = []
    for i in range(0, len(rgb), batch):
        y = student(to_tensor(rgb[i:i + batch])).clamp_(0, 1).mul_(255).round_()
        out.append(y.to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def validate(student: Student, faces: np.ndarray, x2: np.ndarray, x4: np.ndarray) -> dict:
    """PSNR (dB) against the teacher on whole faces: x2, and x4 = the student twice, bytes in between."""
    student.eval()
    up2 = upscale(student, faces)
    up4 = upscale(student, up2)
    student.train()
    return {"x2": round(psnr(up2, x2), 3), "x4": round(psnr(up4, x4), 3)}


# ---------------------------------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainConfig:
    channels: tuple[int, ...] = DEFAULT_CHANNELS
    patch: int = 32             # the input patch's interior, px: the target patch is twice that
    batch: int = 32
    lr: float = 1e-3
    x4_share: float = 0.5       # of each batch, from the second pass (128 -> 256 px)
    warmup: int = 100


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """A short linear warm-up, then a cosine from lr down to lr / 20 over the run (progress 0..1)."""
    warm = min(1.0, (step + 1) / config.warmup)
    return config.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def load_checkpoint(run_dir: Path) -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {CHECKPOINT} in it; not a `kyara upscaler distill` run folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a checkpoint of `kyara upscaler distill`")
    return state


def _save(run_dir: Path, student: Student, optimizer: torch.optim.Optimizer, step: int, seconds: float,
          rng: np.random.Generator, config: TrainConfig, val: dict | None) -> None:
    state = {"format": CHECKPOINT_FORMAT, "channels": list(student.channels), "step": step, "seconds": seconds,
             "student": student.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": json.dumps(rng.bit_generator.state), "train": json.dumps(asdict(config)),
             "val": json.dumps(val)}
    with atomic_path(run_dir / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def _copy_teacher(teacher_dir: Path, run_dir: Path) -> dict:
    """The teacher's manifest (checked) and licence into RUN_DIR/teacher; returns the manifest."""
    manifest_path = teacher_dir / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise ValueError(f"{manifest_path}: not a manifest ({exc})") from None
    license_path = teacher_dir / manifest.get("license", {}).get("file", "")
    if not license_path.is_file():
        raise FileNotFoundError(f"{teacher_dir}: its licence file is missing; refusing to distil weights whose "
                                "licence cannot travel with the student")
    folder = run_dir / TEACHER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    write_text_atomic(folder / "LICENSE.md", license_path.read_text())
    return manifest


def _settings(kind: type, recorded: dict | None, given: dict, run_dir: Path, what: str):
    """A run's settings: those given over the defaults for a new run; a resumed run's own, which the given
    ones may repeat but not change."""
    if recorded is None:
        return kind(**given)
    changed = {k: v for k, v in given.items() if v != recorded.get(k)}
    if changed:
        raise ValueError(f"{run_dir}: its {what} settings differ from the ones given "
                         f"({', '.join(f'{k} {recorded.get(k)!r} not {v!r}' for k, v in changed.items())}); "
                         "resume with its own, or start another --run-dir")
    return kind(**recorded)


def distill(teacher_dir: str | Path, run_dir: str | Path, steps: int | None = None, minutes: float | None = None,
            resume: bool = False, data_options: dict | None = None, train_options: dict | None = None,
            threads: int = 1, log_every: int = 50, val_every: int = 500, save_every: int = 200) -> dict:
    """Distil the upscaler folder `teacher_dir` into a Student in `run_dir`; returns the last validation.

    `data_options` and `train_options` are fields of DataConfig and TrainConfig that differ from the defaults
    (a resumed run keeps its own and refuses others). `steps` and `minutes` are the run's totals, counted
    across `--resume`s (the first reached ends it, and the learning rate decays over whichever is nearer its
    end), so a resumed run finishes what the interrupted one would have done; to train on, raise them.
    """
    from export.runtime import Upscaler

    if steps is None and minutes is None:
        raise ValueError("give --steps or --minutes (or both): the run's length")
    data_options = dict(data_options or {})
    train_options = dict(train_options or {})
    if "channels" in train_options:
        train_options["channels"] = check_channels(train_options["channels"])
    teacher_dir, run_dir = Path(teacher_dir), Path(run_dir)
    if not teacher_dir.is_dir() or not (teacher_dir / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{teacher_dir}: not an upscaler folder (no {MANIFEST_FILE}); make one with "
                                "`kyara upscaler convert`")
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir}: exists and is not a folder")
    for key, kind in (("getchu", "tar of faces"), ("konachan", "tar of faces"), ("generator", "model folder")):
        path = Path(data_options.get(key, getattr(DataConfig, key)))     # a new run's sources, before any writing
        wanted = data_options.get("generated_faces" if key == "generator" else f"{key}_faces", 1)
        if not resume and wanted and not path.exists():
            raise FileNotFoundError(f"{path}: no such {kind} (--{key})")
    state = load_checkpoint(run_dir) if resume else None
    if not resume and (run_dir / CHECKPOINT).exists():
        raise ValueError(f"{run_dir}: already has a {CHECKPOINT}; pass --resume to go on, or use another --run-dir")
    recorded_train = recorded_data = None
    if state is not None:
        recorded_train = {**json.loads(state["train"]), "channels": tuple(state["channels"])}
        try:
            recorded_data = json.loads((run_dir / DATA / DATA_JSON).read_text())["config"]
            recorded_data.pop("teacher_sha256")
        except (OSError, ValueError, KeyError):
            raise ValueError(f"{run_dir}: has a checkpoint but no readable {DATA}/{DATA_JSON}; start another "
                             "--run-dir") from None
    train = _settings(TrainConfig, recorded_train, train_options, run_dir, "training")
    data = _settings(DataConfig, recorded_data, data_options, run_dir, "data")
    torch.set_num_threads(threads)
    teacher = Upscaler(teacher_dir, threads=threads)
    teacher_sha = sha256_of(teacher.path)
    run_dir.mkdir(parents=True, exist_ok=True)
    teacher_manifest = _copy_teacher(teacher_dir, run_dir)
    if state is None:
        for line in describe_cost(train.channels):
            log(line)
    info = prepare_data(run_dir, data, teacher, teacher_sha, threads, must_exist=state is not None)
    del teacher
    folder = run_dir / DATA
    faces, x2, x4 = (np.load(folder / f"{name}.npy") for name in ("faces", "x2", "x4"))
    val_rows, x4_rows = np.array(info["val"]), np.array(info["x4_rows"])
    train_rows = np.setdiff1d(np.arange(len(faces)), val_rows)
    n_val = len(val_rows)
    student = Student(train.channels)
    first = Patches(faces[train_rows], x2[train_rows], student.padding, train.patch)
    second = Patches(x2[x4_rows[n_val:]], x4[n_val:], student.padding, train.patch) if len(x4_rows) > n_val else None
    val_data = (faces[val_rows], x2[val_rows], x4[:n_val])
    bicubic_db = info["bicubic_psnr_db_vs_teacher"]
    optimizer = torch.optim.Adam(student.parameters(), lr=train.lr)
    rng = np.random.default_rng(data.seed + 1)
    step, seconds, last_val = 0, 0.0, None
    if state is not None:
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = json.loads(state["rng"])
        step, seconds, last_val = int(state["step"]), float(state["seconds"]), json.loads(state["val"])
        log(f"resumed from step {step} ({seconds / 60:.1f} min trained)")
    else:
        write_text_atomic(run_dir / "run.json", json.dumps({"teacher": str(teacher_dir), "teacher_name":
                          teacher_manifest.get("name"), "train": asdict(train), "data": asdict(data)}, indent=2) + "\n")
    log(f"student {student.channels}: {sum(p.numel() for p in student.parameters()):,} weights; "
        f"bicubic vs the teacher on the {n_val} validation faces: x2 {bicubic_db['x2']} dB, x4 {bicubic_db['x4']} dB")

    def done() -> bool:
        return (steps is not None and step >= steps) or (minutes is not None and seconds >= minutes * 60)

    def progress() -> float:
        return max(step / steps if steps else 0.0, seconds / (minutes * 60) if minutes else 0.0)

    def run_validation() -> dict:
        nonlocal last_val
        begun = time.perf_counter()
        last_val = {"step": step, **validate(student, *val_data)}
        with open(run_dir / VAL_LOG, "a") as f:
            f.write(json.dumps({**last_val, "minutes": round(seconds / 60, 2)}) + "\n")
        log(f"val step {step}: PSNR vs the teacher x2 {last_val['x2']:.2f} dB, x4 {last_val['x4']:.2f} dB "
            f"(bicubic {bicubic_db['x2']:.2f}, {bicubic_db['x4']:.2f}) [{time.perf_counter() - begun:.0f} s]")
        return last_val

    n_second = round(train.batch * train.x4_share) if second is not None else 0
    losses = []
    clock = logged = time.perf_counter()
    try:
        while not done():
            lr = learning_rate(train, step, progress())
            for group in optimizer.param_groups:
                group["lr"] = lr
            xa, ya = first.sample(train.batch - n_second, rng)
            if n_second:
                xb, yb = second.sample(n_second, rng)
                loss = ((student(to_tensor(xa), pad=False) - to_tensor(ya)).abs().sum()
                        + (student(to_tensor(xb), pad=False) - to_tensor(yb)).abs().sum()) / (ya.size + yb.size)
            else:
                loss = (student(to_tensor(xa), pad=False) - to_tensor(ya)).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            now = time.perf_counter()
            seconds, clock = seconds + now - clock, now
            if step % log_every == 0:
                rate, logged = (now - logged) / log_every, now
                log(f"step {step}: L1 {np.mean(losses[-log_every:]):.5f}, lr {lr:.2e}, {rate:.2f} s/step, "
                    f"{seconds / 60:.1f} min")
            if step % save_every == 0:
                _save(run_dir, student, optimizer, step, seconds, rng, train, last_val)
            if val_every and step % val_every == 0 and not done():
                run_validation()                # its time counts towards the minutes (the clock runs on)
        _save(run_dir, student, optimizer, step, seconds, rng, train, last_val)
        if last_val is None or last_val["step"] != step:
            run_validation()
            _save(run_dir, student, optimizer, step, seconds, rng, train, last_val)
    except KeyboardInterrupt:
        _save(run_dir, student, optimizer, step, seconds, rng, train, last_val)
        log(f"interrupted: saved step {step}; go on with --resume")
        raise
    log(f"done: step {step}, {seconds / 60:.1f} min; {run_dir / CHECKPOINT}")
    return last_val


def export_student(run_dir: str | Path, out: str | Path, default: str = "fp32") -> dict:
    """Write the run's student as an upscaler folder (`export.upscaler.write_folder`); returns its manifest.

    The default file is fp32: the student's is ~0.4 MB, smaller than the teacher's compact one, and the
    compact copy's int8 weights cost it far more than they cost the teacher (its first convolution, 3 -> 32,
    learns large weights whose rounding the later layers amplify: 30 dB against its own fp32 output, where the
    teacher's compact file keeps 45 dB)."""
    from export.upscaler import FILES, student_source, write_folder

    if default not in FILES:
        raise ValueError(f"--default must be one of {', '.join(FILES)}, got {default!r}")
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir)
    teacher_folder = run_dir / TEACHER_DIR
    try:
        teacher = json.loads((teacher_folder / MANIFEST_FILE).read_text())
        license_text = (teacher_folder / "LICENSE.md").read_text()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{run_dir}: its {TEACHER_DIR}/ (the teacher's manifest and licence) is missing or "
                         f"unreadable ({type(exc).__name__})") from None
    student = Student(tuple(state["channels"]))
    try:
        student.load_state_dict(state["student"])
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{run_dir / CHECKPOINT}: its weights do not fit its channels ({reason})") from None
    extra = {"channels": list(student.channels), "macs_per_output_pixel": macs_per_pixel(student.channels)[1]}
    data_json = run_dir / DATA / DATA_JSON
    if data_json.is_file():
        info = json.loads(data_json.read_text())
        extra["data"] = [{k: v for k, v in s.items() if k != "path"} for s in info.get("sources", [])]
        extra["validation_faces"] = len(info.get("val", []))
        extra["bicubic_psnr_db_vs_teacher"] = info.get("bicubic_psnr_db_vs_teacher")
    val = json.loads(state["val"]) if state.get("val") else None
    if val:
        extra["psnr_db_vs_teacher"] = {"x2": val["x2"], "x4": val["x4"], "at_step": val["step"]}
    source = student_source(student.channels, student.arrays(), teacher, license_text, int(state["step"]), extra)
    return write_folder(source, out, default)
