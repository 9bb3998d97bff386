"""The defaults are the fast path: ``compile(optimizer)`` alone trains under XLA with a
fused loop whose steps per execution the flow chooses (`tfp_flows.training.fused`)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import data
from tfp_flows.training import engine
from tfp_flows.training import fused as fused_steps


@pytest.fixture(scope="module")
def moons():
    return data.load_two_moons(num_train=1000, num_test=16)[0][0]


def small_flow(**kwargs):
    keras.utils.set_random_seed(0)
    return tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,), seed=0, **kwargs)


def trainer_of(flow):
    return getattr(flow.train_function, "trainer", None)


def test_compile_alone_gives_xla_and_a_fused_loop_the_flow_sizes(moons):
    flow = small_flow()
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert flow.jit_compile is True  # Keras' "auto" would be False on this CPU
    assert flow.steps_per_execution == fused_steps.FIRST_STEPS
    flow.fit(moons[:992], batch_size=16, epochs=2, verbose=0)  # 62 batches per epoch
    trainer = trainer_of(flow)
    assert trainer is not None and trainer.jit and trainer.auto
    assert trainer.capacity == fused_steps.MAX_STEPS  # 16 x 2 floats: far under the memory bound
    assert trainer.chosen is not None and 1 <= trainer.chosen <= fused_steps.MAX_STEPS
    flow.fit(moons[:64], batch_size=16, epochs=1, verbose=0)  # the next fit groups the chosen
    grouping = engine.balanced(4, trainer.chosen)  # equal groups of about chosen in 4 steps
    assert trainer_of(flow) is trainer and trainer.steps == grouping
    assert flow.steps_per_execution == grouping
    assert int(flow.optimizer.iterations.numpy()) == 2 * 62 + 4
    assert flow.get_compile_config()["steps_per_execution"] == "auto"


def test_auto_groups_cover_an_epoch_in_equal_launches():
    assert [engine.balanced(79, s) for s in (71, 32, 100, 500, 1)] == [79, 40, 79, 79, 1]
    assert engine.balanced(62, 16) == 16 and engine.balanced(10, 4) == 5


def test_explicit_settings_are_respected_and_callbacks_see_each_execution(moons, capsys):
    flow = small_flow()
    flow.compile(optimizer="adam", jit_compile=False)
    assert flow.jit_compile is False and flow.steps_per_execution == 1
    flow.fit(moons[:64], batch_size=16, epochs=1, verbose=0)
    assert trainer_of(flow) is None  # Keras' own train function
    flow = small_flow()
    flow.compile(optimizer="adam", steps_per_execution=4)
    ends = []
    callback = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append((batch, float(logs["loss"]))))
    flow.fit(moons[:10 * 16], batch_size=16, epochs=1, verbose=1, callbacks=[callback])
    trainer = trainer_of(flow)
    assert flow.steps_per_execution == 4 and trainer.capacity == 4 and not trainer.auto
    assert trainer.chosen is None and trainer.jit
    assert [b for b, _ in ends] == [3, 7, 11]  # Keras' numbering: the last step of each group
    assert all(np.isfinite(loss) for _, loss in ends)
    assert "10/10" in capsys.readouterr().out
    assert int(flow.optimizer.iterations.numpy()) == 10  # the short last group ran its 2


def test_auto_steps_train_as_one_step_per_execution(moons):
    """Same batches, same steps: the chosen grouping, its short groups (end of epoch), a
    smaller last batch and the first (sizing) launch give the weights of Keras' own loop,
    one step per execution (without XLA, which only saves two XLA compiles here)."""
    batches = moons[:7 * 64 + 40]  # 7 batches of 64 and one of 40 per epoch
    results = []
    for steps, jit in ((1, False), ("auto", "auto")):
        flow = small_flow()
        flow.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=steps,
                     jit_compile=jit)
        flow.fit(batches, batch_size=64, epochs=3, shuffle=False, verbose=0)
        flow.fit(batches, batch_size=64, epochs=1, shuffle=False, verbose=0)  # chosen S
        results.append((flow.get_weights(), int(flow.optimizer.iterations.numpy())))
    (want, steps_1), (got, steps_auto) = results
    assert trainer_of(flow).chosen is not None and trainer_of(flow).capacity > 8
    assert steps_1 == steps_auto == 4 * 8
    assert any(np.abs(w).max() > 0 for w in want[-4:])  # trained: last layers left zero init
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def untracked_identity(x):
    """An operation without an XLA kernel (a Python function) that changes nothing."""
    return tf.py_function(lambda t: t, [x], x.dtype)


class XlaUnfriendlyFlow(tfp_flows.Flow):
    """A flow whose loss runs a ``tf.py_function``: XLA cannot compile its step."""

    def _nll_step(self, data, training):
        x, context, _ = self._unpack(data)
        x = tf.reshape(untracked_identity(x), tf.shape(x))
        return -tf.reduce_mean(self._log_prob(x, context, training))


def test_xla_failure_falls_back_with_one_warning(moons):
    flow = small_flow()
    unfriendly = XlaUnfriendlyFlow(flow.flow_layers, (2,), name="unfriendly")
    unfriendly.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=4)
    before = [w.copy() for w in unfriendly.get_weights()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = unfriendly.fit(moons[:200], batch_size=16, epochs=2, verbose=0)
        unfriendly.evaluate(moons[:32], verbose=0)
    xla = [w for w in caught if "XLA cannot compile" in str(w.message)]
    assert len(xla) == 1, [str(w.message) for w in caught]
    assert unfriendly.jit_compile is False and not trainer_of(unfriendly).jit
    assert int(unfriendly.optimizer.iterations.numpy()) == 2 * 13  # no step lost or repeated
    assert np.all(np.isfinite(history.history["loss"]))
    assert any(not np.allclose(a, b) for a, b in zip(unfriendly.get_weights(), before))


def test_xla_compile_errors_are_told_from_other_errors():
    @tf.function(jit_compile=True, autograph=False)
    def no_kernel(x):
        return untracked_identity(x) + 1.0

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        no_kernel(tf.ones(3))
    assert fused_steps.is_xla_compile_error(caught.value)
    assert not fused_steps.is_xla_compile_error(
        tf.errors.InvalidArgumentError(None, None, "Tensor had NaN values"))
    assert not fused_steps.is_xla_compile_error(ValueError("XLA"))
