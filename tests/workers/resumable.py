"""A slow training run with BackupAndRestore, to be killed and restarted by the test."""

import sys
import time

import keras
import numpy as np

import tfp_flows

backup, out = sys.argv[1], sys.argv[2]


class Progress(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        print(f"BEGIN {epoch}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        print(f"END {epoch}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.05)  # slow enough to be killed in the middle of an epoch


keras.utils.set_random_seed(0)
x = tfp_flows.data.two_moons(1024)[0]
flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
flow.compile(optimizer="adam", jit_compile=True, steps_per_execution=1)  # a callback per step
flow.fit(x, batch_size=64, epochs=6, verbose=0,
         callbacks=[keras.callbacks.BackupAndRestore(backup, double_checkpoint=True), Progress()])
flow.save(out)
print("DONE", float(np.mean(flow.log_prob(x))), flush=True)
