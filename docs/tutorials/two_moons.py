# %% [markdown]
# # Two moons from zero
#
# A normalizing flow learns an exact density. This tutorial builds one for a 2-D data
# set, trains it with Keras' `fit`, looks at its density and its samples, saves it, and
# exports it as a SavedModel that answers a TensorFlow Serving request with TensorFlow
# alone. It is executed each time the documentation is built, on the machine that
# builds it; to keep that well under two minutes on a 2-core CPU the flow has 8 steps
# and trains for 3,200 batches (the README's command trains a 16-step flow).

# %%
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tfp_flows  # first: it imports TensorFlow without its start-up chatter

import keras
import numpy as np
import tensorflow as tf
from IPython.display import Image, display

from tfp_flows import data, plots

tf.get_logger().setLevel("ERROR")  # no "Assets written to ..." lines from export
keras.utils.set_random_seed(0)
work = Path(tempfile.mkdtemp())  # every file this tutorial writes goes here

# %% [markdown]
# ## The data
#
# Two interleaved half circles with Gaussian noise (standard deviation 0.05): 8,192
# training points and 2,048 independent test points. The data's own entropy is about
# 0.285 nats, the floor that a test NLL approaches.

# %%
(x, _), (x_test, _) = data.load_two_moons(num_train=8192, num_test=2048)
x.shape, x_test.shape

# %% [markdown]
# ## The flow
#
# `RealNVP(2)` stacks affine couplings: each step keeps one coordinate and shifts and
# scales the other by an MLP of the kept one, then the coordinates swap. Its density is
# `log p(x) = log N(f(x); 0, I) + log|det df/dx|`, exact for every `x`.
# `compile(optimizer)` alone is the fast path: no loss (the loss is the negative
# log-likelihood), XLA, and many steps in one compiled program.

# %%
flow = tfp_flows.RealNVP(2, num_steps=8, hidden_units=(64, 64))
flow.compile(optimizer=keras.optimizers.Adam(1e-3))
print(f"{flow.count_params():,} parameters in {len(flow.flow_layers)} flow layers")

# %% [markdown]
# ## Training
#
# `fit` logs the mean negative log-likelihood (`loss`, nats) and bits per dimension.

# %%
start = time.perf_counter()
history = flow.fit(x, batch_size=256, epochs=100, verbose=0)
seconds = time.perf_counter() - start
steps = 100 * len(x) // 256
print(f"{steps} steps in {seconds:.1f} s; last epoch's loss {history.history['loss'][-1]:.3f} nats")

# %% [markdown]
# The test NLL is the mean of `-log p(x)` over points the flow has not seen:

# %%
test_nll = -float(np.mean(flow.log_prob(x_test)))
print(f"test NLL {test_nll:.3f} nats (the data's entropy: about 0.285)")

# %% [markdown]
# ## Density and samples
#
# Sampling runs the flow backwards: `z ~ N(0, I)`, then `x = f^-1(z)`. A seed makes it
# repeatable; a temperature below 1 draws `z` from a narrower normal (the typical set).

# %%
samples = flow.sample(2000, seed=0)
plots.density_2d(flow, x_test, work / "moons.png", samples=samples.numpy())
display(Image(filename=work / "moons.png"))

# %% [markdown]
# `encode` is the normalizing direction (data to latent) and `decode` the sampling one;
# they are inverses of each other to float precision, and the latent of the data looks
# like a standard normal:

# %%
z = flow.encode(x_test)
print("round trip error:", float(np.abs(flow.decode(z) - x_test).max()))
print("latent mean", np.round(np.mean(z, 0), 2), "and standard deviation", np.round(np.std(z, 0), 2))

# %% [markdown]
# ## Saving and loading
#
# A flow is a Keras model: `save` writes a `.keras` file, and `tfp_flows.load_flow`
# reads it back in Keras' safe mode (nothing in the file is executed) with errors that
# name the file and the problem.

# %%
flow.save(work / "moons.keras")
restored = tfp_flows.load_flow(work / "moons.keras")
print("same density after loading:",
      np.allclose(restored.log_prob(x_test[:5]), flow.log_prob(x_test[:5]), atol=1e-5))

# %% [markdown]
# ## Export and a served request
#
# `export` writes a versioned SavedModel folder (`served/moons/1/`) that TensorFlow
# Serving loads as it is. Its signatures are `serving_default` and `log_prob`,
# `sample`, `encode` and `decode`.

# %%
served = flow.export(work / "served" / "moons")
print(served.relative_to(work), sorted(p.name for p in served.iterdir()))

# %% [markdown]
# TensorFlow Serving's REST API takes a JSON body such as the one below. To show that
# the export needs neither `tfp_flows` nor TensorFlow Probability, a fresh Python
# process in which both imports are blocked loads it with `tf.saved_model.load` and
# answers the request through the `log_prob` signature, as the model server would.

# %%
request = {"signature_name": "log_prob", "instances": [{"x": [0.5, 0.25]}, {"x": [1.5, -0.3]}]}
server = f"""
import json, sys
sys.modules["tfp_flows"] = None               # importing either now fails
sys.modules["tensorflow_probability"] = None
import tensorflow as tf
model = tf.saved_model.load({str(work / "served" / "moons" / "1")!r})
request = json.loads(sys.stdin.read())
signature = model.signatures[request["signature_name"]]
x = tf.constant([row["x"] for row in request["instances"]], tf.float32)
outputs = signature(x=x)
print(json.dumps({{"predictions": [{{k: v[i].numpy().item() for k, v in outputs.items()}}
                                   for i in range(len(request["instances"]))]}}))
"""
reply = subprocess.run([sys.executable, "-c", server], input=json.dumps(request),
                       capture_output=True, text=True, check=True)
print(reply.stdout.strip().splitlines()[-1])

# %% [markdown]
# The served numbers are the flow's own:

# %%
answer = json.loads(reply.stdout.strip().splitlines()[-1])
served_log_p = [row["log_prob"] for row in answer["predictions"]]
ours = flow.log_prob(np.array([[0.5, 0.25], [1.5, -0.3]], np.float32)).numpy()
print("served:", np.round(served_log_p, 5), " flow.log_prob:", np.round(ours, 5))

# %% [markdown]
# The `sample` signature takes the number of samples (int32), a seed (int64) and a
# temperature; its input specs say so:

# %%
model = tf.saved_model.load(str(work / "served" / "moons" / "1"))
print(model.signatures["sample"].structured_input_signature[1])
drawn = model.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(7, tf.int64),
                                   temperature=tf.constant(1.0))
drawn["x"].numpy()
