"""The main job: ``python -m chainrule train``."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from chainrule import cli


def _run(*args):
    return subprocess.run([sys.executable, "-m", "chainrule", *args], capture_output=True, text=True,
                          timeout=300)


def test_train_planar_beats_85_percent():
    out = _run("train", "--no-progress", "--layers", "2,4,1", "--hidden", "tanh", "--epochs", "5000")
    assert out.returncode == 0, out.stderr
    train = float(re.search(r"train accuracy:\s+([\d.]+)%", out.stdout).group(1))
    test = float(re.search(r"test accuracy:\s+([\d.]+)%", out.stdout).group(1))
    assert train > 85.0, out.stdout
    assert test > 80.0, out.stdout


@pytest.mark.parametrize("dataset", ["moons", "circles"])
def test_train_other_datasets(dataset, capsys):
    assert cli.main(["train", "--dataset", dataset, "--epochs", "300", "--no-progress",
                     "--convention", "J", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "dW, db equal to convention L: True" in out
    assert "train accuracy" in out


def test_train_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "out.png"
    assert cli.main(["train", "--epochs", "50", "--no-progress", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_reports_bad_layers_clearly(capsys):
    assert cli.main(["train", "--layers", "3,4,1", "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "n[0] = 3" in err and "expected (3, m)" in err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 1
    assert "train" in capsys.readouterr().out
