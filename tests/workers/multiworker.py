"""One worker of a two-worker MultiWorkerMirroredStrategy run (TF_CONFIG set by the test)."""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from tfp_flows.distribute import is_chief

out_dir = sys.argv[1]
task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype(np.float32)
with strategy.scope():  # a Glow trains under MirroredStrategy in workers/mirrored.py
    flow = tfp_flows.RealNVP(4, num_steps=2, hidden_units=(8,))
    flow.compile(optimizer="adam", jit_compile=True)
dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
history = flow.fit(dataset, epochs=2, verbose=0)
np.savez(f"{out_dir}/weights_{task}.npz", *flow.get_weights())
if is_chief(strategy):
    flow.save(f"{out_dir}/model.keras")
print(json.dumps({"task": task, "chief": is_chief(strategy), "loss": history.history["loss"]}))
