"""Glow's convolution forms under XLA on a GPU, written in JAX (for a machine without TensorFlow).

``python benchmarks/conv_forms_jax.py [--quick] [--out FILE]``: needs ``jax`` with a GPU
backend, not this package. It times, with ``jax.jit`` (XLA, the compiler that
``compile(jit_compile=True)`` hands TensorFlow's steps to), the forward and backward pass
of the conditioners of a 32x32x3 Glow (3 levels x 8 steps, width 256, affine couplings,
batch 256), each convolution in the two forms of ``tfp_flows._conv``:

- ``native``: ``lax.conv_general_dilated`` (cuDNN's convolutions on an NVIDIA GPU);
- ``matrix``: the forms `tfp_flows._conv.conv2d` takes on a CPU: a 1x1 convolution as
  a matrix product, ``patches_times_kernel`` (few input channels) and
  ``taps_then_shift`` (few output channels), the same arithmetic in the same order of
  operations; a shape neither form takes stays a convolution, as there.

It is a proxy: the same compiler and the same operations, not TensorFlow's own
lowering. Prints and writes milliseconds per training step's worth of conditioner
passes (8 couplings per level), float32 and bfloat16: the median of 21 rounds, each
round timing every case in turn (so that clock changes reach all cases alike).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
from jax import lax


def native(x, kernel):
    return lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def patches_times_kernel(x, kernel):
    kh, kw, cin, cout = kernel.shape
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    patches = jnp.concatenate([xp[:, i:i + h, j:j + w, :] for i in range(kh)
                               for j in range(kw)], axis=-1)
    return jnp.tensordot(patches, kernel.reshape(kh * kw * cin, cout), 1)


def taps_then_shift(x, kernel):
    kh, kw, cin, cout = kernel.shape
    h, w = x.shape[1:3]
    per_tap = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(cin, kh * kw * cout)
    t = jnp.tensordot(x, per_tap, 1).reshape(x.shape[:-1] + (kh * kw, cout))
    t = jnp.pad(t, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0), (0, 0)))
    return sum(t[:, i:i + h, j:j + w, i * kw + j, :] for i in range(kh) for j in range(kw))


def matrix(x, kernel):
    """`tfp_flows._conv.conv2d`'s choice of form for this shape."""
    kh, kw, cin, cout = kernel.shape
    if kh == kw == 1:
        return jnp.tensordot(x, kernel[0, 0], 1)
    if kh * kw * min(cin, cout) <= max(cin, cout) or x.shape[1] * x.shape[2] < kh * kw:
        return patches_times_kernel(x, kernel) if cin <= cout else taps_then_shift(x, kernel)
    return native(x, kernel)


def conditioner(conv, params, x):
    """Glow's: 3x3 conv + ReLU, 1x1 conv + ReLU, 3x3 conv (``tfp_flows.conditioners.ConvNet``)."""
    h = jax.nn.relu(conv(x, params[0]) + params[1])
    h = jax.nn.relu(conv(h, params[2]) + params[3])
    return conv(h, params[4]) + params[5]


def level_shapes(size, channels, levels):
    """``(H, C_a, C_out)`` of each level's couplings: squeeze, then half the channels out."""
    shapes = []
    for _ in range(levels):
        size, channels = size // 2, channels * 4
        shapes.append((size, channels // 2, channels))  # affine: 2 (C - C_a) outputs
        channels //= 2
    return shapes


def compiled_level(form, size, c_a, c_out, width, batch, dtype, steps):
    """A compiled call of ``steps`` couplings' forward and backward passes, already run once."""
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    params = [jax.random.normal(keys[0], (3, 3, c_a, width), dtype) * 0.05,
              jnp.zeros((width,), dtype),
              jax.random.normal(keys[1], (1, 1, width, width), dtype) * 0.05,
              jnp.zeros((width,), dtype),
              jax.random.normal(keys[2], (3, 3, width, c_out), dtype) * 0.05,
              jnp.zeros((c_out,), dtype)]
    x = jax.random.normal(keys[3], (batch, size, size, c_a), dtype)
    conv = native if form == "native" else matrix
    if dtype == jnp.float32:  # the two forms compute the same function
        want, got = conditioner(native, params, x), conditioner(matrix, params, x)
        error = float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))
        assert error < 1e-2, f"{form} differs from native by {error:.2e} at {x.shape}"

    def loss(params, x):
        return jnp.mean(conditioner(conv, params, x).astype(jnp.float32) ** 2)

    @jax.jit
    def passes(params, x):
        def body(carry, _):
            value, grads = jax.value_and_grad(loss)(params, x + carry)
            return carry + 1e-6 * value.astype(x.dtype), grads[0].sum()
        return lax.scan(body, jnp.zeros((), x.dtype), None, length=steps)

    jax.block_until_ready(passes(params, x))
    return lambda: jax.block_until_ready(passes(params, x))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    size, width, batch, repeats = (8, 16, 8, 2) if args.quick else (32, 256, 256, 21)
    steps = 8
    report = {"device": str(jax.devices()[0]), "jax": jax.__version__, "batch": batch,
              "width": width, "image": [size, size, 3], "steps_per_level": steps,
              "repeats": repeats, "ms": {}}
    calls = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        for form in ("native", "matrix"):
            for level, (h, c_a, c_out) in enumerate(level_shapes(size, 3, 3)):
                calls[f"{jnp.dtype(dtype).name} {form} level {level + 1}"] = compiled_level(
                    form, h, c_a, c_out, width, batch, dtype, steps)
    times = {name: [] for name in calls}
    for _ in range(repeats):  # rounds over every case in turn: clock drift hits all alike
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        report["ms"][name] = 1e3 * sorted(values)[len(values) // 2]
    for dtype in ("float32", "bfloat16"):
        for form in ("native", "matrix"):
            total = sum(v for k, v in report["ms"].items() if k.startswith(f"{dtype} {form} level"))
            report["ms"][f"{dtype} {form} total"] = total
            print(f"{dtype} {form}: {total:.2f} ms per step's conditioner passes", flush=True)
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
