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


@pytest.mark.parametrize("option, value, words", [
    ("--mini-batch-size", "0", "integer >= 1"),
    ("--mini-batch-size", "-3", "integer >= 1"),
    ("--test-fraction", "-0.5", "[0, 1)"),
    ("--test-fraction", "nan", "[0, 1)"),
    ("--test-fraction", "1", "[0, 1)"),
    ("--layers", "", "at least two positive layer sizes"),
    ("--layers", ",", "at least two positive layer sizes"),
    ("--layers", "2,0,1", "at least two positive layer sizes"),
    ("--layers", "2,x,1", "comma-separated integers"),
    ("--m", "-5", "integer >= 2"),
    ("--m", "1", "integer >= 2"),
    ("--data-seed", "-1", "[0, 4,294,967,296)"),
    ("--seed", str(2 ** 32), "[0, 4,294,967,296)"),
    ("--shuffle-seed", "-1", "[0, 4,294,967,296)"),
    ("--epochs", "-2", "integer >= 0"),
])
def test_train_cli_refuses_bad_values_before_any_work(option, value, words, capsys, monkeypatch):
    """argparse's error (exit 2, the option named), never a silent default or a traceback."""
    import chainrule.cli as cli

    monkeypatch.setattr(cli, "_load_data", lambda args: pytest.fail("data was loaded"))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "moons", "--epochs", "2", "--backend", "numpy",
              "--no-progress", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and words in err


@pytest.mark.parametrize("where", ["missing_dir/out.png", ".", "out.notaformat"])
def test_train_cli_checks_the_plot_path_before_training(where, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    import chainrule.cli as cli

    monkeypatch.setattr(cli, "_load_data", lambda args: pytest.fail("data was loaded"))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "moons", "--epochs", "2", "--no-progress",
              "--plot", str(tmp_path / where)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --plot" in err
    assert ("does not exist" in err, "is a directory" in err, "cannot write a .notaformat"
            in err) == tuple(w == where for w in ["missing_dir/out.png", ".", "out.notaformat"])


def test_train_cli_checks_the_checkpoint_directory_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "moons", "--epochs", "2", "--no-progress",
              "--checkpoint", str(tmp_path / "missing" / "ck.npz")])
    assert exc.value.code == 2
    assert "argument --checkpoint" in capsys.readouterr().err


def test_train_cli_refuses_a_split_with_nothing_to_train_on(capsys):
    rc = main(["train", "--dataset", "moons", "--m", "2", "--test-fraction", "0.9",
               "--epochs", "1", "--backend", "numpy", "--no-progress"])
    assert rc == 2
    assert "leaves none to train on" in capsys.readouterr().err


def test_train_cli_shuffle_seed_must_stay_a_seed_for_every_epoch(capsys):
    rc = main(["train", "--dataset", "moons", "--shuffle-seed", str(2 ** 32 - 2),
               "--mini-batch-size", "50", "--epochs", "3", "--backend", "numpy",
               "--no-progress"])
    assert rc == 2
    assert "--shuffle-seed" in capsys.readouterr().err


def test_train_cli_explicit_zero_epochs_and_layers_are_used(capsys):
    """Values that are valid are used as given (0 epochs is not replaced by the default)."""
    assert main(["train", "--dataset", "moons", "--layers", "2,3,1", "--epochs", "0",
                 "--backend", "numpy", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Network([2, 3, 1]") and "; 0 epochs," in out and "after 0 epochs" in out


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("option", ["--plot", "--checkpoint"])
def test_train_cli_refuses_to_write_a_fifo(option, tmp_path, capsys):
    """savefig on a FIFO would block forever; the save rule refuses it before training."""
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "moons", "--epochs", "2", "--no-progress", option,
              str(fifo)])
    assert exc.value.code == 2
    assert "FIFO, not a regular file" in capsys.readouterr().err
