"""Build the corpus notebooks from learners2.py's transcriptions: python tests/doctor_corpus/make_notebooks.py
(run from the repository root; the .ipynb files are committed)."""
import inspect
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from doctor_corpus import learners2 as lr  # noqa: E402

def src(fn):
    s = inspect.getsource(fn)
    s = re.sub(r"def (\w+)__\w+\(", r"def \1(", s, count=1)
    for a, b in (("linear_backward__jeanpierre", "linear_backward"), ("_sigmoid_backward", "sigmoid_backward"),
                 ("linear_activation_backward__akash", "linear_activation_backward"),
                 ("linear_backward__akash", "linear_backward"), ("_lab(", "linear_activation_backward(")):
        s = s.replace(a, b)
    return s

def notebook(path, source_note, imports, fns):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [f"Transcribed for chainrule's doctor corpus from {source_note}\n"]},
             {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [], "source": imports.splitlines(True)}]
    for i, fn in enumerate(fns, 2):
        cells.append({"cell_type": "markdown", "metadata": {}, "source": [f"Exercise {i - 1}\n"]})
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": i, "outputs": [], "source": src(fn).splitlines(True)})
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                      "source": [f"{fn.__name__.split('__')[0]}_test(target)  # the notebook's test cell (not run by the doctor)\n"]})
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 4}
    with open(path, "w") as f:
        json.dump(nb, f, indent=1)
        f.write("\n")

notebook("tests/doctor_corpus/jeanpierre_week4.ipynb", "jeanpierrelv/Deep-Learning-Python (linear_backward.py, L_model_backward.py, compute_cost.py)",
         "import numpy as np\nfrom dnn_utils_v2 import sigmoid, sigmoid_backward, relu, relu_backward\n%matplotlib inline\n",
         [lr.linear_backward__jeanpierre, lr.L_model_backward__jeanpierre, lr.compute_cost__jeanpierre])
notebook("tests/doctor_corpus/akash_backward.ipynb", "akash1shaw/cat-classifier-from-scratch (backward_propagation.py)",
         "import numpy as np\n", [lr.linear_backward__akash, lr.linear_activation_backward__akash])
notebook("tests/doctor_corpus/buiqtuan_gradient_checking.ipynb", "buiqtuan/python-playground (Week1/GradientChecking.py)",
         "import numpy as np\nfrom gc_utils import sigmoid, relu, dictionary_to_vector, vector_to_dictionary, gradients_to_vector\nfrom testCases import *\n",
         [lr.forward_propagation__buiqtuan, lr.backward_propagation__buiqtuan, lr.backward_propagation_n__buiqtuan])
notebook("tests/doctor_corpus/malys_cost.ipynb", "malys23/Dog-Identifier-2L-NN (compute_cost.py)", "import numpy as np\n", [lr.compute_cost__malys])

# corpus 3 (learners3.py): two of its functions come from notebooks exported to scripts
from doctor_corpus import learners3 as lr3  # noqa: E402

notebook("tests/doctor_corpus/file2167_planar.ipynb",
         "index file 2167033965 (a course-1 week-3 notebook exported to a script, Russian comments)",
         "import numpy as np\nfrom planar_utils import plot_decision_boundary, sigmoid, load_planar_dataset\n",
         [lr3.backward_propagation__file2167])
notebook("tests/doctor_corpus/file2015_adam.ipynb",
         "index file 20159008742 (the course-2 week-2 optimisation notebook's graded Adam cell)",
         "import numpy as np\nimport math\nfrom opt_utils import load_params_and_grads, initialize_parameters\n",
         [lr3.update_parameters_with_adam__file2015])
