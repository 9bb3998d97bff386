"""A flow's cached graph functions."""

from __future__ import annotations

import tensorflow as tf


class GraphFunctions:
    """A flow's cached ``tf.function`` graphs, by name (a plain object: Keras and
    TensorFlow track nothing inside it, so the functions are neither saved nor exported).

    No autograph: a flow has no tensor-dependent Python control flow, and autograph
    re-reads source files (and fails on lambdas) at trace time.
    """

    def __init__(self):
        self._functions = {}

    def get(self, name: str, fn, jit_compile: bool = False):
        """The function cached as ``name``, made from ``fn`` on first use."""
        if name not in self._functions:
            self._functions[name] = tf.function(fn, reduce_retracing=True, autograph=False,
                                                jit_compile=jit_compile)
        return self._functions[name]

    def clear(self, name: str) -> None:
        self._functions.pop(name, None)
