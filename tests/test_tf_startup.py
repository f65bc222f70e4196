"""convspec.cli.tf_startup: TensorFlow's start-up lines hidden in convspec's commands, shown
when the user's TF_CPP_MIN_LOG_LEVEL asks for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, require_backend

from convspec.cli.tf_startup import filter_startup

STARTUP = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795972877.386532   31961 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1795972877.533102   31961 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.
To enable the following instructions: AVX2 FMA, rebuild TensorFlow.
W0000 00:00:1795972877.6   31961 gpu_device.cc:2342] Cannot dlopen some GPU libraries.
/site/tensorflow/x.py:3: UserWarning: a Python warning
E0000 00:00:1795972877.7   31961 cuda_executor.cc:1] failed call to cuInit
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795972879.085296   31961 port.cc:153] oneDNN custom operations are on.
"""


def test_records_below_the_level_go_with_their_continuation_lines():
    assert filter_startup(STARTUP, 0) == STARTUP
    assert filter_startup(STARTUP, 1).splitlines() == [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "W0000 00:00:1795972877.6   31961 gpu_device.cc:2342] Cannot dlopen some GPU libraries.",
        "/site/tensorflow/x.py:3: UserWarning: a Python warning",
        "E0000 00:00:1795972877.7   31961 cuda_executor.cc:1] failed call to cuInit"]
    assert filter_startup(STARTUP, 2).splitlines() == [
        "/site/tensorflow/x.py:3: UserWarning: a Python warning",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "E0000 00:00:1795972877.7   31961 cuda_executor.cc:1] failed call to cuInit"]
    assert filter_startup(STARTUP, 3) == "/site/tensorflow/x.py:3: UserWarning: a Python warning\n"
    assert filter_startup("plain output\n", 3) == "plain output\n"


def _import_tensorflow_as_convspec_does(level: str | None) -> str:
    require_backend("tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    code = ("import os, sys\nfrom convspec.cli import tf_startup\ntf_startup.install()\n"
            "import tensorflow\nprint('imported', os.environ['TF_CPP_MIN_LOG_LEVEL'], "
            "file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_importing_tensorflow_in_a_command_prints_nothing():
    assert _import_tensorflow_as_convspec_does(None) == "imported 2\n"


@pytest.mark.slow
def test_a_users_own_level_wins():
    err = _import_tensorflow_as_convspec_does("0")
    if "oneDNN" not in err:
        pytest.skip("this TensorFlow build prints no start-up lines")
    assert "absl::InitializeLog()" in err and err.endswith("imported 0\n")


@pytest.mark.slow
def test_the_convspec_program_installs_the_filter(tmp_path):
    require_backend("tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "convspec", "check", "specs/mnist.yaml",
                             "--backend", "tensorflow"], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr
