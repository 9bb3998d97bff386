"""Trains the same flows on one device and on two logical CPU devices; prints JSON.

Also inverse backprop (`compile(backprop="inverse")`) on two replicas against autodiff
on one device (tests/test_distribute.py asserts it).
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfp_flows  # noqa: E402

out_dir = sys.argv[1]
x = tfp_flows.data.two_moons(512, seed=0)[0]
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def losses(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), seed=1)
        flow.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=True)
    history = flow.fit(x, batch_size=128, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"], flow


single, _ = losses(tf.distribute.get_strategy())
both, flow = losses(mirrored)
flow.save(f"{out_dir}/mirrored.keras")
flow.export(f"{out_dir}/mirrored_export")
reloaded = keras.saving.load_model(f"{out_dir}/mirrored.keras")
same = bool(np.allclose(reloaded.log_prob(x[:16]), flow.log_prob(x[:16]), atol=1e-6))

# A conditional Glow and a mixed-precision RealNVP under the same strategy, with XLA.
rng = np.random.default_rng(0)
images, labels = rng.integers(0, 17, (64, 8, 8, 1)), rng.integers(0, 10, 64)
with mirrored.scope():
    glow = tfp_flows.Glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8, num_values=17,
                          num_classes=10)
    glow.compile(optimizer="adam", jit_compile=True, steps_per_execution=4)  # set to 1
glow_loss = glow.fit(images, labels, batch_size=32, epochs=1, verbose=0).history["loss"]
keras.mixed_precision.set_global_policy("mixed_bfloat16")
with mirrored.scope():
    mixed = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,))
    mixed.compile(optimizer="adam", jit_compile=True)
mixed_loss = mixed.fit(x, batch_size=128, epochs=1, verbose=0).history["loss"]
keras.mixed_precision.set_global_policy("float32")


def steps_asked(strategy):
    """6 epochs of one step each from an endless dataset, at compile's defaults."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), seed=1)
        flow.compile(optimizer=keras.optimizers.SGD(0.02))
    data = tf.data.Dataset.from_tensor_slices(x).batch(64).repeat()
    history = flow.fit(data, epochs=6, steps_per_epoch=1, verbose=0)
    return int(flow.optimizer.iterations.numpy()), history.history["loss"]


(one_steps, one_losses), (two_steps, two_losses) = (
    steps_asked(tf.distribute.get_strategy()), steps_asked(mirrored))


def deltas(strategy, backprop):
    """One SGD step's weight changes of a labelled RealNVP (XLA compiles it per replica)."""
    from tfp_flows.testing import randomize_weights

    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        flow = tfp_flows.RealNVP(4, num_steps=2, hidden_units=(8,), num_classes=3)
        randomize_weights(flow, 0, 0.05)
        flow.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True, backprop=backprop)
    before = [v.numpy() for v in flow.trainable_variables]
    flow.fit(x, labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return [(v.numpy() - b).tolist() for v, b in zip(flow.trainable_variables, before)]


print(json.dumps({"steps_asked": [one_steps, two_steps], "steps_asked_losses": [one_losses,
                                                                                 two_losses],
                  "single": single, "mirrored": both, "replicas": mirrored.num_replicas_in_sync,
                  "reloaded_same": same, "glow_loss": glow_loss, "mixed_loss": mixed_loss,
                  # inverse backprop on two replicas against autodiff on one device
                  "single_store": deltas(tf.distribute.get_strategy(), "store"),
                  "mirrored_inverse": deltas(mirrored, "inverse")}))
