"""Classification metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from livus.evaluate.classification import (
    expected_calibration_error, fit_temperature, plot_reliability, reliability_bins, roc_auc, sens_spec_at,
    threshold_for_sensitivity,
)


def test_auc_hand_cases():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    # one of four positive/negative pairs mis-ordered: 3/4
    assert roc_auc(y, np.array([0.1, 0.6, 0.5, 0.9])) == pytest.approx(0.75)
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_threshold_reaches_sensitivity():
    y = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.3, 1.0, 10), np.linspace(0.0, 0.5, 10)])
    t = threshold_for_sensitivity(y, p, 0.9)
    op = sens_spec_at(y, p, t)
    assert op.sensitivity >= 0.9
    assert sens_spec_at(y, p, t + 1e-6).sensitivity < 0.9  # highest such threshold
    assert 0.0 <= op.specificity <= 1.0


def test_ece_perfect_and_overconfident():
    y = np.array([1, 0] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.95)) == pytest.approx(0.45)
    b = reliability_bins(y, np.full(100, 1.0))
    assert b.count[-1] == 100  # p = 1 falls in the last (closed) bin


def test_temperature_undoes_scaling():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(float)
    assert fit_temperature(3.0 * z, y) == pytest.approx(3.0, rel=0.15)


def test_reliability_plot_written(tmp_path):
    y = np.array([0, 1, 1, 0, 1])
    path = plot_reliability(y, np.array([0.1, 0.8, 0.7, 0.3, 0.95]), tmp_path / "rel.png", title="t")
    assert path.is_file() and path.stat().st_size > 1000
