"""Start TensorFlow without its start-up noise on machines without a GPU.

Importing TensorFlow prints a handful of C++ log lines before any of our
output — on a CPU-only machine among them ``E0000 ... failed call to cuInit:
CUDA error``, which reads like a failure on every laptop and CI runner. The
CLI therefore (library users keep TensorFlow's defaults):

* sets ``TF_CPP_MIN_LOG_LEVEL=1`` (warnings and above) unless the user set it;
* on a machine with no NVIDIA driver, imports TensorFlow and runs its device
  probe with the process's stderr (file descriptor 2) captured, then passes
  on every captured line except the known probe and start-up notices. Real
  warnings and errors still reach the user.

A user who set ``TF_CPP_MIN_LOG_LEVEL`` (say to 0, to debug) sees everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Any

# Start-up notices of a CPU-only TensorFlow: the CUDA probe and its aftermath,
# the "optimized CPU instructions" banner and, on CPUs where oneDNN is on by
# default (AVX-512 Xeons), its round-off notice (informational).
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|cuda_platform\.cc.*failed call to cuInit"
    r"|cpu_feature_guard\.cc"
    r"|port\.cc.*oneDNN custom operations are on"
    r"|^To enable the following instructions:"
)
_NVIDIA = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0")


def has_nvidia_driver() -> bool:
    return any(os.path.exists(path) for path in _NVIDIA)


def import_tensorflow() -> Any:
    """``import tensorflow`` (and its device probe), quietly as the module doc says."""
    user_chose = "TF_CPP_MIN_LOG_LEVEL" in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if "tensorflow" in sys.modules or user_chose or has_nvidia_driver():
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe happens here, once
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines() if not NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
    return tf
