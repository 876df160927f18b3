"""The doctor on real learner code (tests/doctor_corpus/learners.py: sources in its comments).

Ground truth: each function was run on the course's inputs and compared with
chainrule.reference; ``TRUTH`` is the set of mistakes that comparison shows (empty: correct),
or "refuse" for a function whose signature is not the course's. The doctor's verdict must
equal it.
"""

import numpy as np
import pytest

from chainrule.errors import InputError
from chainrule.explain import diagnose
from doctor_corpus import learners as lr

# name: (function, kind passed (None: detected), the truth)
CORPUS = {
    "sourabh planar backward": (lr.backward_propagation__sourabh, None, set()),
    "hvsbombay planar backward": (lr.backward_propagation__hvsbombay, None, set()),
    "deepak momentum": (lr.update_parameters_with_momentum__deepak, None, set()),
    "srijan momentum": (lr.update_parameters_with_momentum__srijan, None, set()),
    "spidernitt momentum (keys from 0)": (lr.update_params_with_momentum__spidernitt,
                                          "update_parameters_with_momentum", {"raises"}),
    "ritvik adam (beta2**2, no sqrt)": (lr.update_parameters_with_adam__ritvik, None,
                                        {"adam_bias_correction", "adam_sqrt_missing"}),
    "sherwyn adam (eps inside sqrt)": (lr.update_parameters_with_adam__sherwyn, None,
                                       {"adam_epsilon_inside_sqrt"}),
    "akash cost": (lr.compute_cost__akash, None, set()),
    "nguyen cost": (lr.compute_cost__nguyen, None, set()),
    "aragorn cost": (lr.compute_cost__aragorn, None, set()),
    "martina cost": (lr.compute_cost__martina, None, set()),
    "rashed model_backward": (lr.model_backward__rashed, None, set()),
    "rashed update_parameters": (lr.update_parameters__rashed, None, set()),
    "silva L_model_backward": (lr.L_model_backward__silva, None, set()),
    "silva linear_activation_forward": (lr.linear_activation_forward__silva, None, set()),
    "raymond linear_activation_forward": (lr.linear_activation_forward__raymond, None, set()),
    "chenfeng linear_forward": (lr.linear_forward__chenfeng, None, set()),
    "kolappan linear_forward": (lr.linear_forward__kolappan, None, set()),
    "mofeiyu forward": (lr.forward__mofeiyu, None, set()),
    "mofeiyu backward": (lr.backward__mofeiyu, None, set()),
    "sarfaraz propagate": (lr.propagate__sarfaraz, None, set()),
    "sheviv propagate": (lr.propagate__sheviv, None, set()),
    "babibo propagate (extra parameter)": (lr.propagate__babibo, None, "refuse"),
    "iftrush regularized cost": (lr.compute_cost_with_regularization__iftrush, None, set()),
    "asaf backward (own signature)": (lr.backward_propagation__asaf, None, "refuse"),
    "hasbrain forward (X transposed)": (lr.forward_propagation__hasbrain, "forward_propagation",
                                        {"x_transposed"}),
    # W1 in place of W2 and tanh at the output at once: on the course's shapes it raises,
    # and that is the verdict (what square shapes show is a note).
    "daniel forward (W1 twice, tanh output)": (lr.forward_propagation__daniel,
                                               "forward_propagation", {"raises"}),
    # The other remaining miss: W1ᵀ, W2ᵀ and a sigmoid hidden layer. With one output unit
    # W2ᵀ·A1 fails on every shape (and the learner's own assert on A2's shape stops the square
    # ones): named only as "raises" with the shape hint, not as the transposes.
    "peter forward (W transposed, sigmoid hidden)": (lr.forward_propagation__peter,
                                                     "forward_propagation", {"raises"}),
    "hoanha L_model_forward": (lr.L_model_forward__hoanha, None, set()),
    "hoanha linear_activation_backward": (lr.linear_activation_backward__hoanha, None, set()),
    "hoanha L_model_backward": (lr.L_model_backward__hoanha, None, set()),
    "hoanha update_parameters": (lr.update_parameters__hoanha, None, set()),
    "hoanha regularized cost": (lr.compute_cost_with_regularization__hoanha, None, set()),
    "hoanha backward with regularization": (lr.backward_propagation_with_regularization__hoanha,
                                            None, set()),
    "hoanha backward with dropout": (lr.backward_propagation_with_dropout__hoanha, None, set()),
    "sheviv planar update_parameters": (lr.update_parameters__sheviv, None, set()),
    "silva update_parameters (params, deepcopy)": (lr.update_parameters__silva, None, set()),
    "sherwyn update_parameters": (lr.update_parameters__sherwyn, None, set()),
}


def _rename(fn, kind):
    """The transcribed name carries its source; the course name is what the learner wrote."""
    name = fn.__name__.split("__")[0]
    fn.__name__ = name
    return fn


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_verdict(name):
    fn, kind, truth = CORPUS[name]
    fn = _rename(fn, kind)
    if truth == "refuse":
        with pytest.raises(InputError, match="the doctor knows these functions"):
            diagnose(fn, kind=kind)
        return
    report = diagnose(fn, kind=kind)
    assert report.codes == truth, str(report)
    if truth:
        assert all(d.formulas or d.code in ("raises",) for d in report.diagnoses), str(report)


def test_corpus_size_and_sources():
    source = open(lr.__file__, encoding="utf-8").read()
    repositories = {line.split(":")[0].lstrip("# ").strip() for line in source.splitlines()
                    if line.startswith("# ") and "/" in line.split(":")[0] and " : " in line}
    assert len(CORPUS) >= 30
    assert len(repositories) >= 8
    assert sum(1 for _, _, truth in CORPUS.values() if truth) >= 8  # wrong ones too
