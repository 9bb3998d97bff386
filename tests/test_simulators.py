"""The SBI simulators (issue 23): the Gaussian mixture's exact posterior integrates to one."""

import numpy as np
import pytest

from tfp_flows import simulators


@pytest.mark.parametrize("num_observations", [None, 10])
def test_gaussian_mixture_posterior_is_normalised(num_observations):
    theta, x = simulators.gaussian_mixture(3, np.random.default_rng(0), num_observations)
    assert x.shape == ((3, 2) if num_observations is None else (3, 10, 2))
    sets = x[:, None] if num_observations is None else x
    # The posterior sits within 6 (one observation) or 1 (ten) of the truth.
    half = 6.0 if num_observations is None else 1.0
    for truth, observed in zip(theta, sets):
        axis = np.linspace(-half, half, 201)
        grid = np.stack(np.meshgrid(truth[0] + axis, truth[1] + axis), -1).reshape(-1, 2)
        log_p = simulators.gaussian_mixture_log_posterior(grid, observed)
        assert abs(np.exp(log_p).sum() * (axis[1] - axis[0]) ** 2 - 1.0) < 2e-3
    # One set per row gives what one set on a grid gives.
    rows = simulators.gaussian_mixture_log_posterior(theta, sets)
    np.testing.assert_allclose(rows, [simulators.gaussian_mixture_log_posterior(t[None], s)[0]
                                      for t, s in zip(theta, sets)], rtol=1e-12)
    assert simulators.gaussian_mixture_log_posterior(np.array([[10.5, 0.0]]), sets[0])[0] == -np.inf
