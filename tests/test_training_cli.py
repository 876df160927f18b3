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


# ---- your own data: --data FILE.csv --target COLUMN, --data FILE.npz (issue 24)

def _iris_csv(path, rows=None):
    load_iris = pytest.importorskip("sklearn.datasets").load_iris
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    lines = ["sepal length,sepal width,petal length,petal width,species"]
    lines += [",".join(map(str, r)) + "," + n for r, n in zip(X, names)]
    if rows is not None:
        lines[1:1] = rows
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_cli_reads_a_csv_with_a_target_column(tmp_path, capsys):
    csv = _iris_csv(tmp_path / "iris.csv")
    assert main(["train", "--data", str(csv), "--target", "species", "--backend", "numpy",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "classes: 0 = setosa, 1 = versicolor, 2 = virginica" in out
    assert "Network([4, 16, 3]" in out and "120 train / 30 test" in out
    assert float(out.split("test accuracy:")[1].split("%")[0]) > 85
    # the target by its 0-based index, and two classes make a sigmoid output
    two = tmp_path / "two.csv"
    two.write_text("a,b,label\n" + "".join(f"{i},{-i},{'yes' if i > 5 else 'no'}\n"
                                          for i in range(12)))
    assert main(["train", "--data", str(two), "--target", "2", "--backend", "numpy",
                 "--no-progress", "--epochs", "5", "--test-fraction", "0"]) == 0
    assert "Network([2, 16, 1], activations=['relu', 'sigmoid']" in capsys.readouterr().out


def test_train_cli_reads_an_npz_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 200))
    Y = (X[0] - 2 * X[1] + 0.5 * X[2]).reshape(1, -1) / 3
    np.savez(tmp_path / "reg.npz", X=X, Y=Y)
    assert main(["train", "--data", str(tmp_path / "reg.npz"), "--backend", "numpy",
                 "--no-progress", "--epochs", "150"]) == 0
    out = capsys.readouterr().out
    assert "activations=['relu', 'identity']" in out
    assert float(out.split("test R²:")[1].split()[0]) > 0.9


@pytest.mark.parametrize("setup, args, words", [
    ("iris", ["--target", "colour"], "no column 'colour'; the columns are 'sepal length'"),
    ("iris", [], "needs --target COLUMN"),
    ("iris", ["--target", "species", "--dataset", "moons"], "--dataset or --data, not both"),
    ("iris_bad_cell", ["--target", "species"], "line 2, column 'sepal width': 'wide' is not "
                                               "a number"),
    ("iris_nan", ["--target", "species"], "NaN"),  # fit's own message
    ("iris", ["--target", "species", "--layers", "3,4,3"],
     "layer 1 expects n[0] = 3 input features"),  # fit's own message
    ("npz_missing", [], "no array Y; it has X"),
    ("txt", [], "expected a .csv or an .npz"),
    ("none", [], "no such file"),
    ("npz_transposed", [], "Y has shape"),  # fit's own message
])
def test_train_cli_data_errors(tmp_path, capsys, setup, args, words):
    path = tmp_path / "data.csv"
    if setup == "iris":
        _iris_csv(path)
    elif setup == "iris_bad_cell":
        _iris_csv(path, rows=["5.1,wide,1.4,0.2,setosa"])
    elif setup == "iris_nan":
        _iris_csv(path, rows=["5.1,,1.4,0.2,setosa"])
    elif setup.startswith("npz"):
        path = tmp_path / "data.npz"
        X = np.zeros((2, 10))
        if setup == "npz_missing":
            np.savez(path, X=X)
        else:
            np.savez(path, X=X, Y=np.zeros((10, 2)))
    elif setup == "txt":
        path = tmp_path / "data.txt"
        path.write_text("1,2\n")
    rc = main(["train", "--data", str(path), "--backend", "numpy", "--no-progress",
               "--epochs", "2"] + args)
    assert rc == 2
    assert words in capsys.readouterr().err


def test_train_help_names_the_data_sets_dimensions(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "2-D data set" not in text
    assert "digits: scikit-learn's bundled 8x8 images, 64-D" in text
    assert "--data FILE" in text and "--target COLUMN" in text


def test_readme_digits_numbers_are_the_clis(capsys):
    """The README's digits split is what `chainrule train --dataset digits` does."""
    import pathlib

    pytest.importorskip("sklearn")
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--backend", "numpy",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    n_train, n_test = out.split("data: digits, ")[1].split(" test")[0].split(" train / ")
    assert f"({n_train} training / {n_test} test images" in readme
