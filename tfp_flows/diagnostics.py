"""Calibration of an amortised posterior ``q(theta | x)``: the numbers a scientist checks.

Given simulations ``(theta_i, x_i)`` from the prior and the simulator (not used in
training) and ``L`` draws ``theta_il ~ q(. | x_i)`` per simulation:

- **Simulation-based calibration** (SBC; Talts et al. 2018, arXiv:1804.06788): the rank
  ``r_id = #{l : theta_ild < theta_id}`` of each true parameter among its posterior
  draws. If ``q`` is the true posterior, each ``r_id`` is uniform on ``{0, ..., L}``.
  `ecdf_difference` is the ECDF of the ranks minus the uniform one, `ecdf_band` its 95%
  simultaneous band (Säilynoja, Bürkner & Vehtari 2022, arXiv:2103.10522): a
  ``q`` too narrow makes a U-shaped histogram, an ECDF difference that falls below the
  band then rises above it; a ``q`` too wide, the reverse; a bias, one sign throughout.
- **Expected coverage** (Hermans et al. 2022, arXiv:2110.06581): the fraction of
  simulations whose ``theta_i`` lies in the ``alpha`` highest-posterior-density (HPD)
  region of ``q(. | x_i)``, against ``alpha``: on the diagonal if calibrated, below it
  if over-confident (`hpd_ranks`, `expected_coverage`, with `ecdf_band` as its band).
- **Parameter recovery**: posterior means and central intervals against the truth
  (`posterior_intervals`, and `tfp_flows.plots.recovery`).

`calibration` computes the draws, ranks and HPD ranks of a `tfp_flows.Flow` in chunks
of ``batch_size`` rows. Everything else is NumPy on arrays.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def sbc_ranks(samples, theta) -> np.ndarray:
    """Talts et al.'s ranks ``r_id = #{l : samples[i, l, d] < theta[i, d]}``.

    Args:
        samples: ``[N, L, D]`` posterior draws (``L`` per simulation) or ``[N, L]`` for
            one parameter.
        theta: ``[N, D]`` (or ``[N]``) true parameters.

    Returns:
        ``[N, D]`` integers in ``[0, L]``; uniform on ``{0, ..., L}`` for each ``d`` if the
        draws come from the true posterior. Cost: O(N L D).

    Raises:
        ValueError: shapes that do not match.

    Examples:
        >>> samples = np.array([[[0.1], [0.5], [0.9]]])  # N = 1, L = 3 draws, D = 1
        >>> sbc_ranks(samples, np.array([[0.6]]))
        array([[2]])
    """
    samples, theta = np.asarray(samples), np.asarray(theta)
    if samples.ndim == 2:
        samples = samples[..., None]
    theta = theta.reshape(len(theta), -1)
    if samples.ndim != 3 or samples.shape[0] != theta.shape[0] or \
            samples.shape[2] != theta.shape[1]:
        raise ValueError(f"sbc_ranks: expected samples [N, L, D] and theta [N, D]; got "
                         f"{samples.shape} and {theta.shape}.")
    return (samples < theta[:, None, :]).sum(1)


def _points(num_samples: int, num_points: int | None) -> np.ndarray:
    """The rank thresholds ``j`` at which the ECDF is read: every ``0 .. L - 1`` up to
    ``num_points`` of them (default 100), else that many spread evenly."""
    num_points = 100 if num_points is None else int(num_points)
    if num_samples <= num_points:
        return np.arange(num_samples)
    return np.unique(np.round(np.linspace(0, num_samples - 1, num_points)).astype(int))


def ecdf_difference(ranks, num_samples: int, num_points: int | None = None):
    """``F_d(z_j) - z_j``: the ECDF of the ranks of parameter ``d`` minus the uniform one.

    ``z_j = (j + 1) / (L + 1)`` is the probability that a uniform rank on ``{0, ..., L}``
    is at most ``j``; ``F_d(z_j) = #{i : r_id <= j} / N``. Under calibration
    ``N F_d(z_j) ~ Binomial(N, z_j)`` exactly. Cost: O(N D K) for ``K`` points.

    Args:
        ranks: ``[N, D]`` (or ``[N]``) ranks in ``[0, L]``, as `sbc_ranks` gives them.
        num_samples: ``L``, draws per simulation.
        num_points: ``K``, points of the curve; None for every ``j`` in ``0 ... L - 1``
            (at ``j = L`` the curve is 0).

    Returns:
        ``(z [K], difference [K, D])``.

    Examples:
        >>> z, difference = ecdf_difference(np.array([0, 1, 2, 3]), num_samples=3)
        >>> z.tolist(), difference[:, 0].tolist()  # four ranks, one of each value
        ([0.25, 0.5, 0.75], [0.0, 0.0, 0.0])
    """
    ranks = np.asarray(ranks)
    ranks = ranks.reshape(len(ranks), -1)
    j = _points(int(num_samples), num_points)
    z = (j + 1) / (num_samples + 1)
    ecdf = (ranks[None, :, :] <= j[:, None, None]).mean(1)
    return z, ecdf - z[:, None]


def _binomial_cdf(n: int, p: np.ndarray) -> np.ndarray:
    """``[K, n + 1]``: ``P(Binomial(n, p_k) <= c)`` for ``c = 0 .. n``, from log-pmfs."""
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    c = np.arange(n + 1)
    log_pmf = (log_factorial[n] - log_factorial[c] - log_factorial[n - c]
               + c * np.log(p[:, None]) + (n - c) * np.log1p(-p[:, None]))
    return np.minimum(np.cumsum(np.exp(log_pmf), axis=1), 1.0)


def _quantile(cdf: np.ndarray, q: float) -> np.ndarray:
    """The smallest ``c`` with ``cdf[k, c] >= q``, per row ``k``."""
    return (cdf < q - 1e-12).sum(1)


def ecdf_band(num_ranks: int, num_samples: int, level: float = 0.95,
              num_points: int | None = None, num_simulations: int = 2000, seed: int = 0):
    """The ``level`` simultaneous band of `ecdf_difference` for ``N = num_ranks`` uniform ranks.

    Säilynoja, Bürkner & Vehtari 2022 (arXiv:2103.10522), by simulation: draw
    ``num_simulations`` sets of ``N`` uniform ranks on ``{0, ..., L}``; for each, the
    smallest two-sided pointwise probability ``2 min(P(X <= N F_j), P(X >= N F_j))``,
    ``X ~ Binomial(N, z_j)``, over the points; ``gamma`` is the ``1 - level`` quantile of
    those minima. The band is the pointwise ``[gamma / 2, 1 - gamma / 2]`` binomial
    interval at every point, so the ECDF of calibrated ranks stays inside it everywhere
    with probability about ``level`` (one parameter; ``D`` parameters each have their own
    ``level`` band). Cost: O(num_simulations (N log N + K log N)) + O(K N) for the
    binomial tables.

    Args:
        num_ranks: ``N``, the number of ranks (simulations).
        num_samples: ``L``, draws per simulation.
        level: the band's simultaneous coverage.
        num_points: ``K``, as in `ecdf_difference`.
        num_simulations: sets of uniform ranks drawn to find ``gamma``.
        seed: NumPy seed of those draws.

    Returns:
        ``(z [K], lower [K], upper [K])``, bounds on ``F(z) - z``.

    Raises:
        ValueError: ``level`` outside ``(0, 1)``, or sizes below 1.

    Examples:
        >>> z, lower, upper = ecdf_band(100, num_samples=9, num_simulations=200)
        >>> bool(np.all(lower <= 0) and np.all(upper >= 0)), len(z)
        (True, 9)
    """
    if not 0 < level < 1 or int(num_ranks) < 1 or int(num_samples) < 1:
        raise ValueError(f"ecdf_band: expected 0 < level < 1, num_ranks >= 1 and "
                         f"num_samples >= 1; got {level}, {num_ranks}, {num_samples}.")
    n, num_samples = int(num_ranks), int(num_samples)
    j = _points(num_samples, num_points)
    z = (j + 1) / (num_samples + 1)
    cdf = _binomial_cdf(n, z)
    below = np.concatenate([np.zeros((len(z), 1)), cdf[:, :-1]], axis=1)  # P(X <= c - 1)
    rng = np.random.default_rng(seed)
    minima = np.empty(int(num_simulations))
    rows = np.arange(len(z))
    for s in range(len(minima)):
        ranks = np.sort(rng.integers(0, num_samples + 1, n))
        counts = np.searchsorted(ranks, j, side="right")
        tails = np.minimum(cdf[rows, counts], 1.0 - below[rows, counts])
        minima[s] = np.min(np.minimum(1.0, 2.0 * tails))
    gamma = np.quantile(minima, 1.0 - level)
    lower = _quantile(cdf, gamma / 2) / n - z
    upper = _quantile(cdf, 1.0 - gamma / 2) / n - z
    return z, lower, upper


def in_band(ranks, num_samples: int, level: float = 0.95, **band_kwargs) -> np.ndarray:
    """``[D]`` booleans: whether each parameter's `ecdf_difference` stays inside its
    `ecdf_band` at every point (the SBC check of a calibrated posterior at ``level``).

    Args:
        ranks: ``[N, D]`` (or ``[N]``) ranks in ``[0, L]``.
        num_samples: ``L``, draws per simulation.
        level: the band's simultaneous coverage.
        **band_kwargs: passed to `ecdf_band` (``num_points``, ``num_simulations``, ``seed``).

    Returns:
        One boolean per parameter.

    Examples:
        >>> ranks = np.random.default_rng(0).integers(0, 10, (200, 2))  # uniform: calibrated
        >>> in_band(ranks, num_samples=9, num_simulations=200).tolist()
        [True, True]
    """
    ranks = np.asarray(ranks).reshape(len(ranks), -1)
    num_points = band_kwargs.get("num_points")
    _, difference = ecdf_difference(ranks, num_samples, num_points)
    _, lower, upper = ecdf_band(len(ranks), num_samples, level, **band_kwargs)
    tolerance = 1e-9
    return np.all((difference >= lower[:, None] - tolerance)
                  & (difference <= upper[:, None] + tolerance), axis=0)


def hpd_ranks(log_q_theta, log_q_samples) -> np.ndarray:
    """How many posterior draws are denser than the truth: ``k_i = #{l : log q(theta_il |
    x_i) > log q(theta_i | x_i)}``.

    ``k_i / L`` estimates the credibility of the smallest highest-posterior-density (HPD)
    region that holds ``theta_i``; ``k_i`` is the SBC rank of the statistic ``-log q``, so
    under calibration it is uniform on ``{0, ..., L}`` (`in_band` applies to it as it is).
    Cost: O(N L).

    Args:
        log_q_theta: ``[N]`` log-densities of the true parameters.
        log_q_samples: ``[N, L]`` log-densities of the posterior draws.

    Returns:
        ``[N]`` integers in ``[0, L]``.

    Raises:
        ValueError: shapes that do not match.

    Examples:
        >>> hpd_ranks(np.array([-1.0]), np.array([[-0.5, -2.0, -0.1]]))
        array([2])
    """
    log_q_theta, log_q_samples = np.asarray(log_q_theta), np.asarray(log_q_samples)
    if log_q_samples.ndim != 2 or log_q_theta.shape != log_q_samples.shape[:1]:
        raise ValueError(f"hpd_ranks: expected log_q_theta [N] and log_q_samples [N, L]; "
                         f"got {log_q_theta.shape} and {log_q_samples.shape}.")
    return (log_q_samples > log_q_theta[:, None]).sum(1)


def expected_coverage(hpd_ranks, num_samples: int, num_points: int | None = None):
    """Empirical coverage of HPD regions against their credibility ``alpha``.

    The truth ``theta_i`` is in the ``alpha`` HPD region of ``q(. | x_i)`` when fewer than
    a fraction ``alpha`` of the posterior mass is denser than it; from ``L`` draws, at
    ``alpha = z_j = (j + 1) / (L + 1)``: when ``k_i <= j`` (`hpd_ranks`). So the coverage
    curve is the ECDF of the HPD ranks, ``c(z_j) = #{i : k_i <= j} / N``, and
    `ecdf_band` (plus ``z``) is its simultaneous band. Cost: O(N K).

    Args:
        hpd_ranks: ``[N]`` HPD ranks in ``[0, L]`` (`hpd_ranks`).
        num_samples: ``L``, draws per simulation.
        num_points: ``K``, as in `ecdf_difference`.

    Returns:
        ``(levels [K], coverage [K])``: on the diagonal if ``q`` is calibrated, below it
        where ``q`` is over-confident (its regions too small), above where too wide.

    Examples:
        >>> levels, coverage = expected_coverage(np.array([0, 1, 2, 3]), num_samples=3)
        >>> levels.tolist(), coverage.tolist()
        ([0.25, 0.5, 0.75], [0.25, 0.5, 0.75])
    """
    z, difference = ecdf_difference(np.asarray(hpd_ranks).reshape(-1, 1), num_samples,
                                    num_points)
    return z, difference[:, 0] + z


def posterior_intervals(samples, level: float = 0.9):
    """Posterior means and central ``level`` intervals of ``[N, L, D]`` draws.

    Args:
        samples: ``[N, L, ...]`` posterior draws, the event flattened to ``D``.
        level: the intervals' central probability.

    Returns:
        ``(mean, lower, upper)``, each ``[N, D]``. Cost: O(N L D log L).

    Examples:
        >>> mean, lower, upper = posterior_intervals(np.arange(11.0).reshape(1, 11, 1), 0.8)
        >>> [round(float(v[0, 0]), 6) for v in (mean, lower, upper)]
        [5.0, 1.0, 9.0]
    """
    samples = np.asarray(samples)
    samples = samples.reshape(samples.shape[0], samples.shape[1], -1)
    tail = (1.0 - level) / 2
    lower, upper = np.quantile(samples, [tail, 1.0 - tail], axis=1)
    return samples.mean(1), lower, upper


@dataclasses.dataclass
class Calibration:
    """What `calibration` computed; every array has one row per simulation.

    Attributes:
        samples: ``[N, L, *event_shape]`` posterior draws.
        ranks: ``[N, D]`` SBC ranks (`sbc_ranks`), the event flattened to ``D``.
        hpd_ranks: ``[N]`` (`hpd_ranks`): the SBC ranks of ``-log q``.

    Args:
        samples: as above.
        ranks: as above.
        hpd_ranks: as above.

    Examples:
        >>> result = Calibration(np.zeros((4, 9, 1)), np.arange(4)[:, None], np.arange(4))
        >>> result.num_samples
        9
    """

    samples: np.ndarray
    ranks: np.ndarray
    hpd_ranks: np.ndarray

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[1])

    def in_band(self, level: float = 0.95) -> np.ndarray:
        """``[D + 1]`` booleans: `in_band` of each parameter's ranks, then of the HPD
        ranks (the coverage curve inside its band)."""
        ranks = np.concatenate([self.ranks, self.hpd_ranks[:, None]], axis=1)
        return in_band(ranks, self.num_samples, level)

    def expected_coverage(self):
        """`expected_coverage` of the HPD ranks: ``(levels, coverage)``."""
        return expected_coverage(self.hpd_ranks, self.num_samples)


def calibration(flow, theta, observations, num_samples: int = 100, seed: int = 0,
                batch_size: int = 65536) -> Calibration:
    """Posterior draws, SBC ranks and HPD ranks of ``flow`` over held-out simulations.

    Draws ``L = num_samples`` from ``q(. | x_i)`` for every observation (``flow.sample(L,
    context=observations)``, ``[N, L, ...]``) and evaluates ``log q`` of the truths and of
    every draw, ``batch_size`` rows at a time. Cost: ``N L`` sampling passes and ``N (L +
    1)`` density evaluations.

    Args:
        flow: a conditional `tfp_flows.Flow` (or anything with its ``sample(n, context=...,
            seed=..., batch_size=...)`` returning ``[N, n, ...]`` and ``log_prob(theta,
            context)``).
        theta: ``[N, *event_shape]`` true parameters, simulated from the prior.
        observations: ``[N, *context_shape]``: what the simulator gave for each.
        num_samples: ``L``, draws per observation.
        seed: of the draws.
        batch_size: rows per pass.

    Returns:
        A `Calibration`: the draws, their SBC ranks and HPD ranks.

    Raises:
        ValueError: ``theta`` and ``observations`` of different lengths, or empty.

    Examples:
        >>> import tfp_flows
        >>> flow = tfp_flows.NSF(1, num_steps=1, hidden_units=(8,), context_shape=(2,))
        >>> rng = np.random.default_rng(0)
        >>> result = calibration(flow, rng.normal(size=(6, 1)), rng.normal(size=(6, 2)),
        ...                      num_samples=5)
        >>> result.samples.shape, result.ranks.shape, result.hpd_ranks.shape
        ((6, 5, 1), (6, 1), (6,))
    """
    theta, observations = np.asarray(theta), np.asarray(observations)
    if len(theta) != len(observations) or len(theta) < 1:
        raise ValueError(f"calibration: expected one observation per parameter; got "
                         f"{len(observations)} observations for {len(theta)} parameters.")
    samples = np.asarray(flow.sample(int(num_samples), context=observations, seed=seed,
                                     batch_size=batch_size))
    count = len(theta)
    per_pass = max(1, int(batch_size) // (int(num_samples) + 1))
    log_q_theta, log_q_samples = [], []
    for start in range(0, count, per_pass):
        chunk = slice(start, start + per_pass)
        context = observations[chunk]
        log_q_theta.append(np.asarray(flow.log_prob(theta[chunk], context)))
        draws = samples[chunk]
        flat = draws.reshape((-1,) + draws.shape[2:])
        log_q = np.asarray(flow.log_prob(flat, np.repeat(context, num_samples, axis=0)))
        log_q_samples.append(log_q.reshape(len(draws), int(num_samples)))
    flat_samples = samples.reshape(count, int(num_samples), -1)
    return Calibration(samples, sbc_ranks(flat_samples, theta.reshape(count, -1)),
                       hpd_ranks(np.concatenate(log_q_theta), np.concatenate(log_q_samples)))
