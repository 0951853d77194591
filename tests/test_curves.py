import json

import numpy as np
import pytest
from PIL import Image

from training.curves import H, plot_curves


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
