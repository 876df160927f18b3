"""``chainrule train`` with the training options, ``--plot``, checkpoints and resume."""

import numpy as np
import pytest

import chainrule
from chainrule.cli import main


def test_train_cli_with_training_options_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "train.png"
    rc = main(["train", "--dataset", "moons", "--layers", "2,8,1", "--hidden", "relu",
               "--optimizer", "adam", "--lr", "0.02", "--mini-batch-size", "32",
               "--epochs", "40", "--lambd", "0.01", "--keep-prob", "0.9",
               "--validation-fraction", "0.2", "--early-stopping", "--patience", "50",
               "--decay-rate", "0.01", "--backend", "numpy", "--no-progress",
               "--plot", str(png)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Adam(" in out and "mini-batches of 32" in out
    assert "validation cost" in out
    accuracy = float(out.split("test accuracy:")[1].split("%")[0])
    assert accuracy > 80
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_cli_checkpoint_and_resume(tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    args = ["train", "--dataset", "circles", "--optimizer", "momentum", "--mini-batch-size",
            "50", "--epochs", "12", "--lr", "0.3", "--backend", "numpy", "--no-progress",
            "--checkpoint", str(ckpt), "--checkpoint-every", "5"]
    assert main(args) == 0
    finished = chainrule.load(ckpt)
    assert int(np.asarray(finished.get_state()["train/epoch"]).reshape(-1)[0]) == 12
    # Resuming a finished run trains nothing more and ends at the same model.
    assert main(args + ["--resume", str(ckpt)]) == 0
    again = chainrule.load(ckpt)
    for key, value in finished.get_state().items():
        np.testing.assert_array_equal(again.get_state()[key], value, err_msg=key)
    capsys.readouterr()


def test_train_cli_reports_bad_options(capsys):
    rc = main(["train", "--dataset", "moons", "--keep-prob", "1.5", "--epochs", "2",
               "--backend", "numpy", "--no-progress"])
    assert rc == 2
    assert "keep_prob" in capsys.readouterr().err


def test_train_cli_digits(capsys):
    pytest.importorskip("sklearn")
    assert main(["train", "--dataset", "digits", "--epochs", "8", "--backend", "numpy",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy:")[1].split("%")[0]) > 90
