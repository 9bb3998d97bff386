"""Imports TensorFlow without its start-up chatter on stderr.

TensorFlow 2.21 writes its C++ start-up notices (oneDNN, CUDA stubs) before its
logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach them; the
only way to keep ``import tfp_flows`` quiet is to hold file descriptor 2 while
TensorFlow loads. If the import fails, what it wrote is replayed. Set
``TFP_FLOWS_VERBOSE=1`` to see everything.
"""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("TFP_FLOWS_VERBOSE"):
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
            import tensorflow_probability  # noqa: F401

            tensorflow.config.list_physical_devices("GPU")  # CUDA probing logs here too
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_import_tensorflow_quietly()
