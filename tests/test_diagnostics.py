"""Calibration diagnostics (issue 23): SBC ranks, their ECDF band and expected coverage
pass for the true posterior of a conjugate Gaussian and fail for an over-confident one."""

import numpy as np
import pytest

from tfp_flows import diagnostics, plots

NOISE = 0.5  # theta ~ N(0, I_2), x ~ N(theta, NOISE^2 I_2)
SHRINK, SD = 1.0 / (1.0 + NOISE**2), np.sqrt(NOISE**2 / (1.0 + NOISE**2))


class GaussianPosterior:
    """``q(theta | x) = N(x / (1 + s^2), width^2 s^2 / (1 + s^2) I)``: the exact posterior
    for ``width = 1``, over-confident below 1. Has `tfp_flows.Flow`'s ``sample`` (a batch
    of contexts gives ``[B, n, 2]``) and ``log_prob``."""

    def __init__(self, width=1.0):
        self.scale = width * SD

    def sample(self, num_samples, context, seed, batch_size=None):
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((len(context), num_samples, 2))
        return SHRINK * np.asarray(context)[:, None] + self.scale * noise

    def log_prob(self, theta, context):
        z = (np.asarray(theta) - SHRINK * np.asarray(context)) / self.scale
        return (-0.5 * z**2 - np.log(self.scale) - 0.5 * np.log(2 * np.pi)).sum(-1)


@pytest.fixture(scope="module")
def simulations():
    rng = np.random.default_rng(1)
    theta = rng.standard_normal((400, 2))
    return theta, theta + NOISE * rng.standard_normal((400, 2))


@pytest.fixture(scope="module")
def results(simulations):
    theta, x = simulations
    return {width: diagnostics.calibration(GaussianPosterior(width), theta, x, num_samples=50)
            for width in (1.0, 0.6)}


def test_the_true_posterior_is_calibrated(results):
    result = results[1.0]
    assert result.ranks.shape == (400, 2) and result.ranks.min() >= 0 and result.ranks.max() <= 50
    # Uniform ranks: each quarter of {0..50} holds about a quarter of them ...
    quarters = np.histogram(result.ranks, bins=[0, 13, 26, 38, 51])[0] / result.ranks.size
    np.testing.assert_allclose(quarters, [13 / 51, 13 / 51, 12 / 51, 13 / 51], atol=0.04)
    # ... every ECDF stays in its 95% band, and the coverage curve on the diagonal.
    assert result.in_band().tolist() == [True, True, True]
    levels, covered = result.expected_coverage()
    assert np.abs(covered - levels).max() < 0.08


def test_an_over_confident_posterior_fails(results):
    result = results[0.6]
    assert result.in_band().tolist() == [False, False, False]
    # Too narrow: the truths fall in the tails (ranks near 0 and 50) ...
    assert np.mean((result.ranks < 5) | (result.ranks > 45)) > 0.35
    # ... and fewer truths than promised lie inside each HPD region.
    levels, covered = result.expected_coverage()
    inner = (levels > 0.2) & (levels < 0.9)
    assert np.all(covered[inner] < levels[inner] - 0.1)


def test_the_band_holds_calibrated_ranks_about_95_percent_of_the_time():
    z, lower, upper = diagnostics.ecdf_band(100, 20, num_simulations=1000, seed=3)
    assert np.all(lower < 0) and np.all(upper > 0) and len(z) == 20
    rng = np.random.default_rng(4)
    inside = []
    for _ in range(400):
        _, difference = diagnostics.ecdf_difference(rng.integers(0, 21, (100, 1)), 20)
        inside.append(np.all((difference[:, 0] >= lower) & (difference[:, 0] <= upper)))
    assert 0.92 <= np.mean(inside) <= 0.99  # a pointwise band would hold far less often


def test_intervals_and_errors(results, simulations):
    mean, lower, upper = diagnostics.posterior_intervals(results[1.0].samples, 0.9)
    assert mean.shape == lower.shape == upper.shape == (400, 2)
    inside = (simulations[0] >= lower) & (simulations[0] <= upper)
    assert 0.85 < inside.mean() < 0.95
    with pytest.raises(ValueError, match=r"expected samples \[N, L, D\] and theta \[N, D\]"):
        diagnostics.sbc_ranks(np.zeros((4, 10, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one observation per parameter"):
        diagnostics.calibration(GaussianPosterior(), np.zeros((4, 2)), np.zeros((3, 2)))


def test_calibration_pictures(results, simulations, tmp_path):
    pytest.importorskip("matplotlib")
    plots.calibration(results[1.0], simulations[0], tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").stat().st_size > 10_000
