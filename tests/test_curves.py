import json

import numpy as np
import pytest
from PIL import Image

from metrics.curves import H, plot_curves


def test_curves_draw_each_loss_panel(tmp_path):
    rows = [{"step": s, "d_adv": 1.0, "g_adv": 2.0 - s / 100, "gp": 0.5, "d_tag_real": 6 - s / 50,
             "g_tag_fake": 6.0, "loss_d": 1.0} for s in range(1, 101)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = plot_curves(tmp_path, tmp_path / "curves.png", smooth=5)
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape[0] == 2 * H
    orange = (np.abs(pixels.astype(int) - [255, 127, 14]).sum(-1) < 30)     # g_adv / g_tag_fake lines
    assert orange[:H].sum() > 200 and orange[H:].sum() > 200


def test_curves_need_a_metrics_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics log"):
        plot_curves(tmp_path, tmp_path / "c.png")


def test_curves_add_evaluation_panels_when_the_run_was_evaluated(tmp_path):
    def figures(step):
        return {"score": 0.0, "fidelity": {"mean": 0.5 + step / 400}, "face_rate": {"generated": 0.4 + step / 300},
                "nightmare_rate": {"generated": 0.0}, "kid": {"generated": {"mean": 0.01 - step / 20000}},
                "fid": {"generated": 1.0}, "diversity": {"generated": 1.0}}
    rows = [{"step": s, "d_adv": 1.0, "g_adv": 1.0, "gp": 0.5, "d_tag_real": 1.0, "g_tag_fake": 1.0, "loss_d": 1.0}
            for s in range(1, 101)] + [{"step": s, "eval": figures(s)} for s in (25, 50, 75, 100)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pixels = np.asarray(Image.open(plot_curves(tmp_path, tmp_path / "curves.png")).convert("RGB"))
    assert pixels.shape[0] == 4 * H
    blue = (np.abs(pixels.astype(int) - [31, 119, 180]).sum(-1) < 30)      # the first series of each panel
    assert blue[2 * H:3 * H].sum() > 200 and blue[3 * H:].sum() > 200      # fidelity; KID on its own axis


def test_a_distillation_run_and_the_spectrum_get_panels_of_their_own(tmp_path):
    """g_teacher (logged only with a teacher) and the spectrum distances (luminance and chroma, in evaluations
    since they existed) each get a panel; a run without them gets neither (the test above: two panels, and four with evaluations)."""
    def figures(step):
        return {"score": 0.0, "fidelity": {"mean": 0.5}, "face_rate": {"generated": 0.5},
                "nightmare_rate": {"generated": 0.5}, "kid": {"generated": {"mean": 0.01}}, "fid": {"generated": 1.0},
                "diversity": {"generated": 1.0},
                "spectrum": {"generated": {"distance": 1 - step / 200, "chroma_distance": 2 - step / 100}}}
    rows = [{"step": s, "d_adv": 1.0, "g_adv": 1.0, "gp": 0.5, "d_tag_real": 1.0, "g_tag_fake": 1.0, "loss_d": 1.0,
             "g_teacher": 0.6 - s / 400} for s in range(1, 101)] + [{"step": s, "eval": figures(s)} for s in (50, 100)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pixels = np.asarray(Image.open(plot_curves(tmp_path, tmp_path / "curves.png")).convert("RGB"))
    assert pixels.shape[0] == 6 * H      # three loss panels, shares, KID, spectrum
    blue = (np.abs(pixels.astype(int) - [31, 119, 180]).sum(-1) < 30)
    assert blue[2 * H:3 * H].sum() > 200 and blue[5 * H:].sum() > 200   # g_teacher's line; the spectrum's
    orange = (np.abs(pixels.astype(int) - [255, 127, 14]).sum(-1) < 30)   # the second series: chroma's line
    assert orange[5 * H:].sum() > 200 and orange[4 * H:5 * H].sum() == 0


def test_until_draws_the_log_as_it_stood_at_that_step(tmp_path):
    """A shipped checkpoint's curves: the same picture as a log cut at its step by hand, not the whole run's."""
    rows = [{"step": s, "d_adv": 1.0, "g_adv": 2.0 - s / 100 + (5.0 if s > 60 else 0.0), "gp": 0.5,
             "d_tag_real": 6 - s / 50, "g_tag_fake": 6.0, "loss_d": 1.0} for s in range(1, 101)]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for folder, kept in ((whole, rows), (cut, rows[:60])):
        folder.mkdir()
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    until = np.asarray(Image.open(plot_curves(whole, tmp_path / "until.png", smooth=5, until=60)))
    by_hand = np.asarray(Image.open(plot_curves(cut, tmp_path / "by_hand.png", smooth=5)))
    everything = np.asarray(Image.open(plot_curves(whole, tmp_path / "all.png", smooth=5)))
    assert (until == by_hand).all()
    assert (until != everything).any()
