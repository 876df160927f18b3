"""The tutorial notebooks in docs/tutorials, executed in a real Jupyter kernel (nbclient +
ipykernel), as a learner runs them: no cell fails, and the rich outputs are there."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

TUTORIALS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))

# what each notebook must show: (HTML class of a rich report, how many of them), PNG figures
EXPECTED = {
    "where_the_1_over_m_goes.ipynb": ({"chainrule-narrative": 1, "chainrule-network": 1,
                                       "chainrule-gradcheck": 2, "chainrule-doctor": 1}, 0),
    "why_W_transposed.ipynb": ({"chainrule-scalar": 1, "chainrule-jacobians": 1}, 3),
    "find_the_bug.ipynb": ({"chainrule-gradcheck": 2, "chainrule-doctor": 1}, 0),
    "batchnorm_where_1_over_m_goes.ipynb": ({"chainrule-gradcheck": 2}, 1),
}


def test_every_tutorial_is_listed():
    assert sorted(p.name for p in NOTEBOOKS) == sorted(EXPECTED)


def _run(path, monkeypatch, tmp_path):
    # a learner's kernel draws figures inline (CI sets MPLBACKEND=Agg for everything else)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), \
        "notebooks are stored without outputs (Sphinx and this test execute them)"
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tutorial_executes_with_rich_outputs(path, monkeypatch, tmp_path):
    nb = _run(path, monkeypatch, tmp_path)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    classes, figures = EXPECTED[path.name]
    for name, count in classes.items():
        assert sum(f'class="{name} ' in h for h in html) == count, name
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == figures
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "False" not in text  # every check the notebooks print holds
