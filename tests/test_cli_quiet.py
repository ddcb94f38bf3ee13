"""The CLI starts TensorFlow quietly on a machine without a GPU, and answers --help without it."""

import os
import subprocess
import sys

import pytest

from tfrs_irns.cli import quiet

from helpers import with_tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796129148.031196   29479 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796129156.149975   29479 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796129148.561726   29479 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.",
    # Printed (twice) on CPUs where oneDNN is on by default, e.g. AVX-512 Xeons.
    "I0000 00:00:1796204833.301929   16907 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
]


@pytest.mark.parametrize("line", PROBE_LINES)
def test_the_known_start_up_notices_are_noise(line):
    assert quiet.NOISE.search(line)


@pytest.mark.parametrize(
    "line",
    ["W0000 00:00:1.0 123 op_kernel.cc:1] something real went wrong", "Traceback (most recent call last):",
     "E0000 00:00:1.0 1 cuda_executor.cc:1] out of memory"],
)
def test_real_messages_are_not_noise(line):
    assert not quiet.NOISE.search(line)


def _python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.subprocess
def test_help_and_argument_errors_answer_without_tensorflow():
    code = (
        "import sys\n"
        "from tfrs_irns.cli.main import main\n"
        "for argv in (['--help'], ['train', '--help'], ['train']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(main(['train', '--config', 'configs/quickstart.yaml', '--set', 'train.epochs=0']))\n"
        "print('tensorflow' in sys.modules)\n"
    )
    proc = _python(code)
    assert proc.stdout.strip().splitlines()[-2:] == ["2", "False"], proc.stderr
    assert "train.epochs: must be > 0, got 0" in proc.stderr


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(quiet.has_nvidia_driver(), reason="a machine with an NVIDIA driver prints its real GPU probe")
def test_a_training_run_prints_no_probe_noise_and_short_epoch_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = ["train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"), "--set",
            *with_tiny("train.epochs=2", "batching.strategy=gcbs", "batching.gcbs.start_epoch=1")]
    proc = subprocess.run([sys.executable, "-m", "tfrs_irns.cli.main", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for noise in ("cuInit", "cudart_stub", "absl::InitializeLog", "cpu_feature_guard"):
        assert noise not in proc.stderr, proc.stderr
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2
    for line in epochs:
        assert len(line) < 160 and "(l2 " in line and "val_hit_rate@100" in line and "gcbs order" in line, line
    assert "regularization_loss" not in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(quiet.has_nvidia_driver(), reason="a machine with an NVIDIA driver prints its real GPU probe")
def test_train_resume_is_as_quiet_as_the_other_commands(tmp_path):
    """Finding 9 of issue 25: --resume imported TensorFlow before the CLI hid its start-up noise."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(open(os.path.join(ROOT, "configs", "quickstart.yaml")).read())
    (run / "metrics.json").write_text("{}")  # a finished run: resume refuses it after loading the run code
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "tfrs_irns.cli.main", "train", "--resume", str(run)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"tfrs-irns train: error: {run}: the run already finished (it has metrics.json); nothing to resume"
    ]
