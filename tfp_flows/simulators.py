"""Simulators of public simulation-based-inference (SBI) tasks: seeded NumPy, a few lines each.

Each ``task(n, rng)`` returns ``(theta, x)``: ``n`` parameters drawn from the prior and one
simulated observation of each, float64 arrays; ``rng`` is a ``numpy.random.Generator``.
A flow learns the posterior ``q(theta | x)`` with ``theta`` as the event and ``x`` as the
context (``benchmarks/sbi.py`` scores them; ``examples/sbi_gaussian_mixture.py`` fits one).

- `sharp1d`: a 1-D target given 6 standard-normal features (an exact NLL: `sharp1d_nll`).
- `two_moons`: SBI two moons (Greenberg et al. 2019, arXiv:1905.07488), 2-D | 2-D.
- `slcp`: simple likelihood, complex posterior (Papamakarios et al. 2019,
  arXiv:1805.07226), 5-D | 8-D.
- `gaussian_linear`: 10-D | 10-D (Lueckmann et al. 2021, arXiv:2101.04653); its exact
  posterior's NLL: `gaussian_linear_nll`.
- `gaussian_mixture`: 2-D | 2-D, or a set of i.i.d. observations per simulation (ibid.);
  its exact posterior: `gaussian_mixture_log_posterior`.
"""

from __future__ import annotations

import math

import numpy as np


def _sharp1d_params(x):
    weight = 1.0 / (1.0 + np.exp(-(4.0 * x[:, 0] + 2.0 * x[:, 1] * x[:, 2])))
    centre = 1.5 * np.sin(2.0 * x[:, 1] + x[:, 2]) + 0.5 * x[:, 3] * x[:, 4]
    gap = 1.0 + 0.5 * np.tanh(x[:, 4])
    width = 0.05 * np.exp(0.6 * x[:, 5])
    return weight, centre, gap, width


def sharp1d(n, rng):
    """``theta`` 1-D given ``x ~ N(0, I_6)``: two modes ``centre +- gap / 2`` of width
    0.01 to 0.3, the upper one with probability ``weight``; all four depend on ``x``.

    Args:
        n: number of simulations.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(theta, x)``: float64 ``[n, 1]`` parameters from the prior and ``[n, 6]``
        observations.

    Examples:
        >>> theta, x = sharp1d(3, np.random.default_rng(0))
        >>> theta.shape, x.shape
        ((3, 1), (3, 6))
    """
    x = rng.standard_normal((n, 6))
    weight, centre, gap, width = _sharp1d_params(x)
    upper = rng.uniform(size=n) < weight
    theta = centre + np.where(upper, gap, -gap) / 2 + width * rng.standard_normal(n)
    return theta[:, None], x


def sharp1d_nll(theta, x):
    """The exact ``-log p(theta | x)`` of `sharp1d` (the floor).

    Args:
        theta: parameters ``[n, 1]``.
        x: their observations ``[n, 6]``.

    Returns:
        The mean negative log-density of the exact posterior over the rows, nats.

    Examples:
        >>> theta, x = sharp1d(4, np.random.default_rng(0))
        >>> isinstance(sharp1d_nll(theta, x), float)
        True
    """
    weight, centre, gap, width = _sharp1d_params(x)

    def normal(mean):
        return np.exp(-0.5 * ((theta[:, 0] - mean) / width) ** 2) / (width * np.sqrt(2 * np.pi))

    density = weight * normal(centre + gap / 2) + (1 - weight) * normal(centre - gap / 2)
    return float(np.mean(-np.log(density)))


def two_moons(n, rng):
    """``theta ~ U(-1, 1)^2``; ``x`` a point of a crescent of radius 0.1 shifted by
    ``(-|theta_1 + theta_2|, theta_2 - theta_1) / sqrt(2)``: a bimodal posterior.

    Args:
        n: number of simulations.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(theta, x)``: float64 ``[n, 2]`` parameters from the prior and ``[n, 2]``
        observations.

    Examples:
        >>> theta, x = two_moons(3, np.random.default_rng(0))
        >>> theta.shape, x.shape
        ((3, 2), (3, 2))
    """
    theta = rng.uniform(-1.0, 1.0, (n, 2))
    angle = rng.uniform(-np.pi / 2, np.pi / 2, n)
    radius = 0.1 + 0.01 * rng.standard_normal(n)
    p = np.stack([radius * np.cos(angle) + 0.25, radius * np.sin(angle)], axis=1)
    shift = np.stack([-np.abs(theta[:, 0] + theta[:, 1]), -theta[:, 0] + theta[:, 1]], 1)
    return theta, p + shift / np.sqrt(2.0)


def slcp(n, rng):
    """``theta ~ U(-3, 3)^5``; ``x``: four draws of a 2-D Gaussian of mean ``theta[:2]``,
    scales ``theta_3^2``, ``theta_4^2`` and correlation ``tanh(theta_5)``, flattened to 8.

    Args:
        n: number of simulations.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(theta, x)``: float64 ``[n, 5]`` parameters from the prior and ``[n, 8]``
        observations.

    Examples:
        >>> theta, x = slcp(3, np.random.default_rng(0))
        >>> theta.shape, x.shape
        ((3, 5), (3, 8))
    """
    theta = rng.uniform(-3.0, 3.0, (n, 5))
    s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])
    eps = rng.standard_normal((n, 4, 2))
    # x = m + L eps with L the Cholesky factor of [[s1^2, rho s1 s2], [rho s1 s2, s2^2]]
    first = s1[:, None] * eps[..., 0]
    second = s2[:, None] * (rho[:, None] * eps[..., 0] + np.sqrt(1 - rho[:, None] ** 2) * eps[..., 1])
    x = np.stack([theta[:, None, 0] + first, theta[:, None, 1] + second], axis=-1)
    return theta, x.reshape(n, 8)


def gaussian_linear(n, rng):
    """``theta ~ N(0, 0.1 I_10)``, ``x ~ N(theta, 0.1 I_10)``.

    Args:
        n: number of simulations.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(theta, x)``: float64 ``[n, 10]`` parameters from the prior and ``[n, 10]``
        observations.

    Examples:
        >>> theta, x = gaussian_linear(3, np.random.default_rng(0))
        >>> theta.shape, x.shape
        ((3, 10), (3, 10))
    """
    theta = np.sqrt(0.1) * rng.standard_normal((n, 10))
    return theta, theta + np.sqrt(0.1) * rng.standard_normal((n, 10))


def gaussian_linear_nll(theta, x):
    """Exact posterior: ``N(x / 2, 0.05 I)``.

    Args:
        theta: parameters ``[n, 10]``.
        x: their observations ``[n, 10]``.

    Returns:
        The mean negative log-density of the exact posterior over the rows, nats.

    Examples:
        >>> theta, x = gaussian_linear(4, np.random.default_rng(0))
        >>> isinstance(gaussian_linear_nll(theta, x), float)
        True
    """
    var = 0.05
    return float(np.mean(np.sum(0.5 * (theta - x / 2) ** 2 / var + 0.5 * np.log(2 * np.pi * var),
                                axis=1)))


def gaussian_mixture(n, rng, num_observations: int | None = None):
    """``theta ~ U(-10, 10)^2``; each observation ``x ~ N(theta, I) / 2 + N(theta, 0.01 I) / 2``.

    ``num_observations=None``: one observation per simulation, ``x`` of shape ``[n, 2]``
    (Lueckmann et al. 2021, arXiv:2101.04653). An integer ``m``: a set of ``m`` i.i.d.
    observations per simulation, ``[n, m, 2]``.

    Args:
        n: number of simulations.
        rng: a ``numpy.random.Generator``.
        num_observations: None, or the size ``m`` of each set of observations.

    Returns:
        ``(theta, x)``: float64 ``[n, 2]`` and ``[n, 2]`` (or ``[n, m, 2]``).

    Examples:
        >>> theta, x = gaussian_mixture(3, np.random.default_rng(0), num_observations=5)
        >>> theta.shape, x.shape
        ((3, 2), (3, 5, 2))
    """
    theta = rng.uniform(-10.0, 10.0, (n, 2))
    if num_observations is None:
        scale = np.where(rng.uniform(size=(n, 1)) < 0.5, 1.0, 0.1)
        return theta, theta + scale * rng.standard_normal((n, 2))
    m = int(num_observations)
    scale = np.where(rng.uniform(size=(n, m, 1)) < 0.5, 1.0, 0.1)
    return theta, theta[:, None] + scale * rng.standard_normal((n, m, 2))


def _as_sets(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim not in (2, 3) or x.shape[-1] != 2:
        raise ValueError(f"gaussian_mixture: expected sets of observations [n, m, 2] (or one "
                         f"set [m, 2]; single observations as x[:, None]); got {x.shape}.")
    return x


def gaussian_mixture_log_likelihood(theta, x) -> np.ndarray:
    """``log p(x | theta) = sum_j log(N(x_j; theta, I) / 2 + N(x_j; theta, 0.01 I) / 2)`` of
    `gaussian_mixture`, for ``theta [..., 2]`` and sets ``x [..., m, 2]`` that broadcast
    (a grid of ``theta [G, 2]`` against one set ``[m, 2]``, or one set per row). Cost:
    O(rows * m).

    Args:
        theta: parameters ``[..., 2]``.
        x: sets of observations ``[..., m, 2]`` (or single observations ``[..., 2]``).

    Returns:
        The log-likelihoods, of the broadcast batch shape.

    Examples:
        >>> theta, x = gaussian_mixture(4, np.random.default_rng(0), num_observations=3)
        >>> gaussian_mixture_log_likelihood(theta, x).shape
        (4,)
    """
    theta, x = np.asarray(theta, np.float64), _as_sets(x)
    squared = ((theta[..., None, :] - x) ** 2).sum(-1)  # [..., m]
    log_terms = np.stack([-0.5 * squared - np.log(2 * np.pi),
                          -0.5 * squared / 0.01 - np.log(2 * np.pi * 0.01)]) + np.log(0.5)
    return np.logaddexp(log_terms[0], log_terms[1]).sum(-1)


def gaussian_mixture_log_evidence(x) -> np.ndarray:
    """``log integral over the prior's box of p(x | theta) dtheta`` for sets ``x [n, m, 2]``.

    Exact: ``p(x | theta)`` is a sum over the ``2^m`` assignments ``S`` of observations to
    the wide (variance 1) and narrow (0.01) component, each a Gaussian in ``theta``:
    per coordinate ``prod_j N(x_j; theta, v_j) = C_S N(theta; m_S, V_S)`` with precision
    ``1 / V_S = sum_j 1 / v_j``, mean ``m_S = V_S sum_j x_j / v_j`` and ``log C_S =
    log(2 pi V_S) / 2 - sum_j log(2 pi v_j) / 2 - (sum_j x_j^2 / v_j - m_S^2 / V_S) / 2``,
    whose mass in ``[-10, 10]`` is a difference of normal CDFs. Cost: O(n 2^m m).

    Args:
        x: sets of observations ``[n, m, 2]`` (or one set ``[m, 2]``).

    Returns:
        ``[n]`` log-evidences.

    Examples:
        >>> _, x = gaussian_mixture(2, np.random.default_rng(0), num_observations=3)
        >>> gaussian_mixture_log_evidence(x).shape
        (2,)
    """
    x = _as_sets(x)
    x = x[None] if x.ndim == 2 else x
    m = x.shape[1]
    narrow = (np.arange(2 ** m)[:, None] >> np.arange(m)) & 1  # [2^m, m]: 1 = narrow
    inverse_variance = np.where(narrow == 1, 100.0, 1.0)  # [S, m]
    precision = inverse_variance.sum(1)  # [S]
    weighted = np.einsum("sj,njd->nsd", inverse_variance, x)  # [n, S, 2]
    mean = weighted / precision[:, None]
    squares = np.einsum("sj,njd->nsd", inverse_variance, x ** 2)
    log_c = (0.5 * np.log(2 * np.pi / precision)[:, None]
             - 0.5 * (np.log(2 * np.pi / inverse_variance).sum(1))[:, None]
             - 0.5 * (squares - mean ** 2 * precision[:, None]))  # [n, S, 2]
    scale = np.sqrt(2.0 / precision)[:, None]
    erf = np.vectorize(math.erf, otypes=[np.float64])
    mass = 0.5 * (erf((10.0 - mean) / scale) - erf((-10.0 - mean) / scale))
    with np.errstate(divide="ignore"):
        log_terms = (log_c + np.log(mass)).sum(-1) + m * np.log(0.5)  # [n, S]
    top = log_terms.max(1, keepdims=True)
    return (top + np.log(np.exp(log_terms - top).sum(1, keepdims=True)))[:, 0]


def gaussian_mixture_log_posterior(theta, x) -> np.ndarray:
    """The exact ``log p(theta | x)`` of `gaussian_mixture` for one set of observations per
    row: ``theta [n, 2]``, ``x [n, m, 2]`` (a single observation: ``x[:, None]``); or
    a grid ``theta [G, 2]`` given one set ``x [m, 2]``. ``-inf`` outside the prior's box.
    `gaussian_mixture_log_likelihood` minus `gaussian_mixture_log_evidence`.

    Args:
        theta: parameters ``[n, 2]``, or a grid ``[G, 2]``.
        x: sets of observations ``[n, m, 2]``, or one set ``[m, 2]`` for a grid.

    Returns:
        The log-posterior densities, ``[n]`` (or ``[G]``).

    Examples:
        >>> theta, x = gaussian_mixture(2, np.random.default_rng(0), num_observations=3)
        >>> gaussian_mixture_log_posterior(theta, x).shape
        (2,)
    """
    theta, x = np.asarray(theta, np.float64), _as_sets(x)
    evidence = gaussian_mixture_log_evidence(x)
    if x.ndim == 2:
        evidence = evidence[0]
    log_p = gaussian_mixture_log_likelihood(theta, x) - evidence
    return np.where(np.all(np.abs(theta) <= 10.0, axis=-1), log_p, -np.inf)
