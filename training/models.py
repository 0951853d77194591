"""The generator and discriminator of Jin et al. 2017 (SRResNet-style G, residual D), layer by layer.

The one place that defines Kyara's networks (training/dcgan.py holds the DCGAN baseline it is compared with;
training/networks.py builds either by `ModelConfig.family`). Width, depth and resolution come from
`ModelConfig`; `ModelConfig()` is the paper's 128 px model.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.images import YCBCR


UPSAMPLE_MODES = ("shuffle", "resize")
# The network families `ModelConfig.family` names; `training.networks` builds them.
FAMILIES = ("srresnet", "dcgan")
# ModelConfig fields that a new run may set otherwise than the checkpoint it starts from (`kyara train --init`);
# a resume must keep them as they were. `chroma_blur` adds no weights. `attention_res` adds weights, but only
# ones that start as the identity (SelfAttention's gamma = 0): `training.networks.load_across_vocabularies` leaves them at their
# initialisation when the checkpoint has none, so the new run draws at its step 0 what the old model drew.
WEIGHTLESS_FIELDS = ("chroma_blur", "attention_res")
# The submodule that holds the self-attention block, in G and in D (its state-dict keys start with this + ".").
ATTENTION = "attention"


@dataclass
class ModelConfig:
    resolution: int = 128          # 64, 128 or 256: G upsamples 16x16 by 2 per pixel-shuffle stage
    noise_dim: int = 128
    g_channels: int = 64
    g_blocks: int = 16
    d_widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    d_blocks: int = 2              # residual blocks at each discriminator width
    # Quality switches, off in the paper's model. "shuffle" is the paper's conv + PixelShuffle; "resize" is
    # nearest x2 then conv, which cannot make the sub-pixel checkerboard that shuffle starts from.
    upsample: str = "shuffle"
    icnr: bool = False             # shuffle only: start each 2x2 sub-pixel group with one shared kernel
    rgb_kernel: int = 9            # the output conv at full resolution (the paper's 9x9 is ~1/4 of G's FLOPs)
    # Output channels of each upsampling stage (empty: g_channels each). The last stage runs at full resolution:
    # at 64 px with 8 blocks it costs as much as all residual blocks together
    # (docs/experiments/2026-12-01-distilled-student.md).
    g_up_channels: tuple[int, ...] = ()
    # A fixed low-pass ([1, 2, 1] in each direction) on the chroma of G's output, luminance untouched: G cannot
    # draw the coloured speckle that is most of its grain (ChromaBlur). Adds no weights.
    chroma_blur: bool = False
    # Projection discriminator (Miyato & Koyama 2018) beside the ACGAN tag head: D's real/fake logit adds
    # <embed(tags), features>, so an image is judged real *for its tags* and G cannot look real while
    # ignoring them. ACGAN alone trades the two against each other through lambda_adv
    # (docs/experiments/2026-12-01-adversarial-weight.md).
    d_projection: bool = False
    # Self-attention (SAGAN, Zhang et al. 2019) on the feature map of this side in px, in G and in D; 0: none.
    # G: after the upsampling stage that reaches it (16: after the residual blocks, before any upsampling);
    # D: after the stage whose output has this side. Its output scale starts at 0, so a model with it starts
    # as the same model without it, and a run can start from a checkpoint that lacks it (`--init`).
    attention_res: int = 0
    # "dcgan": the DCGAN baseline (training/dcgan.py), which reads only resolution, noise_dim, g_channels (its
    # narrowest G width) and d_widths (one per halving down to 4 x 4) and has none of the switches above.
    family: str = "srresnet"

    def __post_init__(self) -> None:
        self.d_widths = tuple(self.d_widths)
        self.g_up_channels = tuple(self.g_up_channels)
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.family == "dcgan" and (self.resolution != 4 * 2 ** len(self.d_widths) or self.attention_res
                                       or self.d_projection or self.chroma_blur or self.g_up_channels):
            raise ValueError(f"a dcgan halves {self.resolution} px down to 4 x 4 in D ({len(self.d_widths)} "
                             "d_widths given) and has no attention_res, d_projection, chroma_blur or g_up_channels")
        stages = math.log2(self.resolution / 16)
        if self.resolution < 32 or stages != int(stages):
            raise ValueError(f"resolution must be 16 * 2^k (32, 64, 128, 256), got {self.resolution}")
        if self.resolution % 2 ** len(self.d_widths):
            raise ValueError(f"resolution {self.resolution} cannot be halved {len(self.d_widths)} times")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {self.upsample!r}")
        if self.rgb_kernel < 1 or self.rgb_kernel % 2 == 0:
            raise ValueError(f"rgb_kernel must be odd and positive, got {self.rgb_kernel}")
        if self.g_up_channels and (len(self.g_up_channels) != int(stages) or min(self.g_up_channels) < 1):
            raise ValueError(f"g_up_channels must give {int(stages)} positive widths (one per upsampling stage "
                             f"at {self.resolution} px), got {list(self.g_up_channels)}")
        if self.attention_res and self.attention_res not in self.attention_sides:
            raise ValueError(f"attention_res must be 0 (off) or a feature-map side that both G and D have at "
                             f"{self.resolution} px with {len(self.d_widths)} D stages "
                             f"({', '.join(map(str, self.attention_sides)) or 'none'}), got {self.attention_res}")

    @property
    def attention_sides(self) -> tuple[int, ...]:
        """The sides (px) where `attention_res` may put self-attention: G's maps (16 after the residual blocks,
        then each upsampling stage's output) that are also the output of one of D's stages."""
        g_sides = {16 * 2 ** k for k in range(self.upsample_stages + 1)}
        d_sides = [self.resolution // 2 ** (k + 1) for k in range(len(self.d_widths))]
        return tuple(side for side in d_sides if side in g_sides)

    @property
    def upsample_stages(self) -> int:
        return int(math.log2(self.resolution / 16))

    @property
    def up_channels(self) -> tuple[int, ...]:
        return self.g_up_channels or (self.g_channels,) * self.upsample_stages

    def to_json(self) -> dict:
        return {**asdict(self), "d_widths": list(self.d_widths), "g_up_channels": list(self.g_up_channels)}


class GResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the identity (SRResNet)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@torch.no_grad()
def icnr_(conv: nn.Conv2d, factor: int = 2) -> None:
    """ICNR (Aitken et al. 2017): give the factor^2 outputs that PixelShuffle puts side by side one kernel.

    At the start the shuffled map is then a nearest-neighbour upsampling of one convolution, free of the
    checkerboard that independently initialised sub-pixel kernels draw; training may still move them apart.
    """
    sub = nn.Conv2d(conv.in_channels, conv.out_channels // factor ** 2, conv.kernel_size, padding=conv.padding)
    conv.weight.copy_(sub.weight.repeat_interleave(factor ** 2, dim=0))
    conv.bias.copy_(sub.bias.repeat_interleave(factor ** 2))


class Upsample(nn.Module):
    """x2, then BN, ReLU. "shuffle": conv3x3 to 4x out_channels, PixelShuffle (the paper's SRResNet stage);
    "resize": nearest x2, then conv3x3 to out_channels (the same FLOPs). out_channels defaults to channels."""

    def __init__(self, channels: int, mode: str = "shuffle", icnr: bool = False, out_channels: int | None = None):
        super().__init__()
        self.mode = mode
        out_channels = out_channels or channels
        self.conv = nn.Conv2d(channels, out_channels * (4 if mode == "shuffle" else 1), 3, padding=1)
        if mode == "shuffle" and icnr:
            icnr_(self.conv)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "shuffle":
            x = F.pixel_shuffle(self.conv(x), 2)
        else:
            x = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.act(self.bn(x))


class ChromaBlur(nn.Module):
    """Blur the chroma (Cb, Cr) of RGB images with a [1, 2, 1] x [1, 2, 1] kernel; luminance passes unchanged.

    Anime faces are flat fills of colour with dark lines: their fine detail is almost all luminance. The
    grain on generated faces is mostly coloured speckle (v2 at step 12,750: 5x real's chroma high-pass at every
    quantile, 13-21x its power in the top chroma band, with luminance within 1.25x), and blurring real
    faces' chroma this way leaves them looking the same (docs/experiments/2026-12-01-v2-grain-and-chroma-blur.md).
    RGB -> YCbCr, the
    blur and back are all linear, so they fold into one fixed 3x3 convolution from RGB to RGB; edges are
    padded by repetition. Its weights are a non-persistent buffer, so a checkpoint's state dict is the same
    with the switch on or off, and a model trained without it can go on with it (`--init`).
    """

    def __init__(self):
        super().__init__()
        to_ycc = torch.tensor(YCBCR, dtype=torch.float64)
        binomial = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
        blur = torch.outer(binomial, binomial) / 16
        identity = torch.zeros(3, 3, dtype=torch.float64)
        identity[1, 1] = 1
        kernels = torch.stack([identity, blur, blur])                          # per YCbCr channel
        weight = torch.einsum("oc,chw,ci->oihw", torch.linalg.inv(to_ycc), kernels, to_ycc)
        self.register_buffer("weight", weight.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(replicate_pad(x), self.weight).clamp(-1, 1)


def replicate_pad(x: torch.Tensor) -> torch.Tensor:
    """One pixel of edge repetition on each side: F.pad(x, (1, 1, 1, 1), mode="replicate"), made of slices
    and concatenations, because torch.compile's backward of the replicate pad refuses channels_last images
    (a stride check in replication_pad2d_backward: a compiled main-line G could not train)."""
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)


class SelfAttention(nn.Module):
    """Self-attention over the positions of a feature map, as in SAGAN (Zhang et al. 2019, section 4).

    Every position j looks at every position i: with f, g and h 1x1 convolutions (query and key to C/8
    channels, value to C), s_ij = f(x_i)^T g(x_j), beta_ji = softmax_i(s_ij), o_j = sum_i beta_ji h(x_i), and
    the block returns x + gamma * o, gamma a learnt scalar that starts at 0. A convolution sees only its
    neighbourhood, so two far-apart parts of a face (the two eyes) agree only through many layers; here one
    layer relates them directly. gamma = 0 makes the block the identity at first: the network leans on its
    convolutions and learns how much to use the long-range cues, and a model trained without the block can
    start with it drawing exactly what it drew.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # Positions x channels: free views of a channels_last map (training's layout). The HW x HW matrix is
        # never transposed, forward or backward: on a CPU its copies took as long as the rest of the block.
        query = self.query(x).permute(0, 2, 3, 1).reshape(n, h * w, -1)      # N, HW (j), C/8
        key = self.key(x).flatten(2)                                         # N, C/8, HW (i)
        value = self.value(x).permute(0, 2, 3, 1).reshape(n, h * w, c)       # N, HW (i), C
        # attention[n, j, i] = beta_ji: how much position j takes from position i (each row sums to 1)
        attention = torch.softmax(torch.bmm(query, key), dim=-1)
        out = torch.bmm(attention, value).reshape(n, h, w, c).permute(0, 3, 1, 2)   # o, N x C x H x W
        return x + self.gamma * out


class Generator(nn.Module):
    """noise (N, Z) + labels (N, T) -> image (N, 3, R, R) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, n_tags: int):
        super().__init__()
        self.cfg, self.n_tags = cfg, n_tags
        c = cfg.g_channels
        self.fc = nn.Linear(cfg.noise_dim + n_tags, c * 16 * 16)
        self.fc_bn = nn.BatchNorm2d(c)
        self.blocks = nn.Sequential(*[GResBlock(c) for _ in range(cfg.g_blocks)])
        self.blocks_bn = nn.BatchNorm2d(c)
        widths = (c, *cfg.up_channels)
        self.upsample = nn.Sequential(*[Upsample(i, cfg.upsample, cfg.icnr, o) for i, o in zip(widths, widths[1:])])
        self.to_rgb = nn.Conv2d(widths[-1], 3, cfg.rgb_kernel, padding=cfg.rgb_kernel // 2)
        self.chroma_blur = ChromaBlur() if cfg.chroma_blur else None
        # Last, so that the layers above draw the same initial weights with attention on or off. After
        # `attention_stage` upsampling stages (0: straight after the residual blocks).
        self.attention_stage = int(math.log2(cfg.attention_res / 16)) if cfg.attention_res else -1
        self.attention = SelfAttention(widths[self.attention_stage]) if cfg.attention_res else None

    def tag_axes(self) -> dict[str, tuple[int, int]]:
        """Weights with one slice per tag: name -> (axis, index of the first tag along it)."""
        return {"fc.weight": (1, self.cfg.noise_dim)}

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat([noise, labels], dim=1)).view(-1, self.cfg.g_channels, 16, 16)
        # channels_last follows from here when the weights are channels_last (4x faster convs on CPU).
        x = torch.relu(self.fc_bn(x.contiguous(memory_format=torch.channels_last)))
        x = x + torch.relu(self.blocks_bn(self.blocks(x)))   # the long skip over all residual blocks
        if self.attention is None:
            x = self.upsample(x)
        else:
            x = self.attention(x) if self.attention_stage == 0 else x
            for i, stage in enumerate(self.upsample, start=1):
                x = stage(x)
                x = self.attention(x) if i == self.attention_stage else x
        x = torch.tanh(self.to_rgb(x))
        return self.chroma_blur(x) if self.chroma_blur is not None else x


class DResBlock(nn.Module):
    """conv3x3-LeakyReLU-conv3x3 plus the identity, then LeakyReLU (no normalisation: DRAGAN's penalty)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def projection_codes(labels: torch.Tensor) -> torch.Tensor:
    """Labels (1 on, 0 off, -1 unknown) as the projection reads them: +1, -1 and 0, so that an unknown tag
    adds nothing to the logit."""
    return torch.where(labels >= 0, labels.float() * 2 - 1, torch.zeros((), device=labels.device))


class Discriminator(nn.Module):
    """image (N, 3, R, R) [, labels (N, T) with d_projection] -> (real/fake logit (N,), tag logits (N, T))."""

    apart = False     # no BatchNorm: real and fake can share one forward (training.dcgan's D cannot)

    def __init__(self, cfg: ModelConfig, n_tags: int):
        super().__init__()
        self.cfg, self.n_tags = cfg, n_tags
        layers: list[nn.Module] = []
        in_channels = 3
        for width in cfg.d_widths:
            layers += [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            layers += [DResBlock(width) for _ in range(cfg.d_blocks)]
            in_channels = width
        self.features = nn.Sequential(*layers)
        side = cfg.resolution // 2 ** len(cfg.d_widths)
        self.adv_head = nn.Linear(in_channels * side * side, 1)
        self.tag_head = nn.Linear(in_channels * side * side, n_tags)
        # Zero at the start: the logit begins as the plain D's and learns how much each tag should move it.
        self.embed = nn.Linear(n_tags, in_channels * side * side, bias=False) if cfg.d_projection else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)
        # After the last layer of the stage whose output has attention_res px (a module of its own, so that
        # `features`' layers keep the names a checkpoint without attention has).
        self.attention, self.attention_after = None, -1
        if cfg.attention_res:
            stage = int(math.log2(cfg.resolution // cfg.attention_res)) - 1
            self.attention_after = (stage + 1) * (2 + cfg.d_blocks) - 1
            self.attention = SelfAttention(cfg.d_widths[stage])

    def tag_axes(self) -> dict[str, tuple[int, int]]:
        """Weights with one slice per tag: name -> (axis, index of the first tag along it)."""
        return {"tag_head.weight": (0, 0), "tag_head.bias": (0, 0),
                **({"embed.weight": (1, 0)} if self.embed is not None else {})}

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attention is None:
            h = self.features(images)
        else:
            h = images
            for i, layer in enumerate(self.features):
                h = layer(h)
                h = self.attention(h) if i == self.attention_after else h
        h = h.flatten(1)
        adv = self.adv_head(h).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a projection discriminator (d_projection) judges an image with its labels")
            adv = adv + (self.embed(projection_codes(labels)) * h).sum(1)
        return adv, self.tag_head(h)


@torch.no_grad()
def standing_statistics(generator: Generator, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Replace G's BatchNorm running statistics by their exact average over these (noise, labels) batches.

    An EMA generator averages G's weights over hundreds of steps, but the running statistics it carries
    were measured on G's current weights. Measuring them on the averaged weights themselves ("standing
    statistics", Brock et al. 2019) gives the eval-mode G the statistics that belong to it. G is left in
    eval mode.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None              # a cumulative average over the batches, not an exponential one
    generator.train()
    for noise, labels in batches:
        generator(noise, labels)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


@torch.no_grad()
def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
