"""The metrics `kyara eval` and the trainer compute, in the order of eval.json's figures, the terminal summary
and report.md's sections. Adding a metric: one new module defining a `metrics.base.Metric`, listed here.

Read it as `registry.METRICS` at the time of use (not `from metrics.registry import METRICS`), so that what is
listed here is what is computed and rendered.
"""
from __future__ import annotations

from metrics import attributes, diversity, face_rate, fid, fidelity, kid, realness, spectrum
from metrics.base import Metric

METRICS: list[Metric] = [realness.METRIC, fidelity.METRIC, attributes.METRIC, face_rate.METRIC, kid.METRIC,
                         fid.METRIC, diversity.METRIC, spectrum.METRIC]
