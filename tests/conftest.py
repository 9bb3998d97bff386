"""Quiet TensorFlow and keep tests deterministic and small."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tfp_flows  # noqa: E402,F401  (imports TensorFlow quietly)
