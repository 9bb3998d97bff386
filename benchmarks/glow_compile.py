"""Case `glow_compile`: time to compile the first training step of a big Glow (ours).

``tfp_flows.Glow((32, 32, 3), num_levels=3, num_steps=16, hidden_channels=256)``,
``fit`` with ``jit_compile=True``: the first one-step ``fit`` traces the model and
XLA-compiles the step; later one-step fits show what a step itself costs.
"""

from __future__ import annotations

import keras  # noqa: E402
import numpy as np

import tfp_flows  # noqa: E402
from benchmarks import _common

SHAPE, BATCH = (32, 32, 3), 16


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    levels, steps, width = (3, 1, 16) if args.quick else (3, 16, 256)
    x = np.random.default_rng(0).integers(0, 256, (BATCH,) + SHAPE).astype(np.int32)
    keras.utils.set_random_seed(0)
    build_s, flow = _common.timed(tfp_flows.Glow, SHAPE, num_levels=levels, num_steps=steps,
                                  hidden_channels=width, num_values=256)
    flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True)

    def one_step():
        return flow.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    first_s = _common.timed(one_step)[0]
    step = _common.median_time(one_step, repeats=args.repeats or (2 if args.quick else 3),
                               warmup=0)
    compile_s = first_s - step["median_s"]
    config = f"{levels} levels x {steps} steps, width {width}, batch {BATCH}"
    rows = [
        _common.row("compile first train step (first fit - later fit)", compile_s, None, "s",
                    config, higher_is_better=False),
        _common.row("first one-step fit (trace + compile + step)", first_s, None, "s",
                    higher_is_better=False),
        _common.row("later one-step fit", step["median_s"], None, "s", higher_is_better=False),
        _common.row("build the model (Python)", build_s, None, "s", higher_is_better=False),
        _common.row("trainable parameters",
                    _common.count_params(flow.trainable_variables), None, ""),
        _common.row("peak RSS", _common.peak_rss_mb(), None, "MiB", higher_is_better=False),
    ]
    details = {"levels": levels, "steps": steps, "width": width, "batch": BATCH,
               "build_s": build_s, "first_fit_s": first_s, "later_fit": step,
               "compile_s": compile_s}
    _common.write_results("glow_compile", args, rows, details)


if __name__ == "__main__":
    main()
