"""The gradient doctor: every mistake of the catalogue named, correct code gets a clean bill."""

import numpy as np
import pytest

from chainrule.errors import InputError
from chainrule.explain import MISTAKES, diagnose
from chainrule.explain.doctor import detect_kind
from chainrule.explain.examples import CATALOGUE, correct_linear_backward, relu_backward


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_diagnose_names_each_catalogue_mistake(name):
    fn, kind, expected = CATALOGUE[name]
    report = diagnose(fn, kind=kind)
    assert report.codes == expected, str(report)
    assert report.ok == (not expected)
    text = str(report)
    if expected:
        for d in report.diagnoses:
            assert d.title in text
            assert d.formulas, f"{d.code} has no correct formula"
            assert any("(" in f and ")" in f for f in d.formulas), "formulas carry shapes"
    else:
        assert "clean bill" in text


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_diagnose_detects_the_kind_from_the_signature(name):
    fn, kind, _ = CATALOGUE[name]
    assert detect_kind(fn) == kind


def test_catalogue_covers_the_issue_list():
    covered = set().union(*(expected for _, _, expected in CATALOGUE.values()))
    for code in ("missing_1_over_m", "extra_1_over_m", "double_1_over_m", "transposed_result",
                 "missing_transpose", "sum_wrong_axis", "missing_keepdims", "g_prime_at_A",
                 "sigmoid_tanh_mixup", "relu_mask_wrong_array", "dA_dZ_mixup", "wrong_cache",
                 "wrong_outputs", "raises"):
        assert code in covered
        assert code in MISTAKES


def test_diagnose_formulas_show_the_probe_shapes():
    report = diagnose(CATALOGUE["linear_backward_missing_1_over_m"][0])
    (d,) = report.diagnoses
    assert d.where == ["dW", "db"]
    assert "dW = (1/m) dZ · A_prevᵀ        (3, 4) = (3, 5) · (5, 4), m = 5" in d.formulas
    assert "m = 5 times" in d.detail


# Mistakes outside the catalogue, written inline.

def _lab(dZ_of):
    """A linear_activation_backward whose dZ is dZ_of(dA, Z, activation)."""
    def linear_activation_backward(dA, cache, activation):
        linear_cache, Z = cache
        return correct_linear_backward(dZ_of(dA, Z, activation), linear_cache)
    return linear_activation_backward


def _tanh_prime(Z):
    return 1 - np.tanh(Z) ** 2


def test_diagnose_tanh_g_prime_at_A():
    fn = _lab(lambda dA, Z, act: dA * _tanh_prime(np.tanh(Z)))
    assert diagnose(fn, activations=("tanh",)).codes == {"g_prime_at_A"}


def test_diagnose_tanh_with_sigmoid_derivative():
    def dZ_of(dA, Z, act):
        s = 1 / (1 + np.exp(-Z))
        return dA * s * (1 - s)
    assert diagnose(_lab(dZ_of), activations=("tanh",)).codes == {"sigmoid_tanh_mixup"}


def test_diagnose_tanh_correct_is_clean():
    assert diagnose(_lab(lambda dA, Z, act: dA * _tanh_prime(Z)), activations=("tanh",)).ok


def test_diagnose_relu_mask_inverted_and_g_instead_of_g_prime():
    inverted = _lab(lambda dA, Z, act: np.where(Z > 0, 0.0, dA))
    assert diagnose(inverted, activations=("relu",)).codes == {"relu_mask_inverted"}
    g_not_prime = _lab(lambda dA, Z, act: dA * np.maximum(Z, 0))
    assert diagnose(g_not_prime, activations=("relu",)).codes == {"g_instead_of_g_prime"}


def test_diagnose_relu_mask_on_A_prev():
    def linear_activation_backward(dA, cache, activation):
        (A_prev, W, b), Z = cache
        dZ = np.array(dA, copy=True)
        dZ[A_prev <= 0] = 0
        return correct_linear_backward(dZ, (A_prev, W, b))
    report = diagnose(linear_activation_backward, activations=("relu",))
    assert report.codes == {"relu_mask_wrong_array"}
    assert report.notes  # it raised on the distinct shapes


def test_diagnose_two_mistakes_in_one_output():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        db = np.sum(dZ, axis=0, keepdims=True)  # wrong axis and no 1/m
        return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, db
    assert diagnose(linear_backward).codes == {"sum_wrong_axis", "missing_1_over_m"}


def test_diagnose_transposed_dA_prev_and_summed_everything():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        return np.dot(dZ.T, W), np.dot(dZ, A_prev.T) / m, np.sum(dZ) / m
    report = diagnose(linear_backward)
    assert report.codes == {"transposed_result", "sum_wrong_axis"}
    assert {w for d in report.diagnoses for w in d.where} == {"dA_prev", "db"}


def test_diagnose_wrong_activation_in_L_model():
    from chainrule.explain.examples import correct_linear_activation_backward

    def L_model_backward(AL, Y, caches):
        grads = {}
        L = len(caches)
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        grads[f"dA{L - 1}"], grads[f"dW{L}"], grads[f"db{L}"] = \
            correct_linear_activation_backward(dAL, caches[L - 1], "sigmoid")
        for l in reversed(range(L - 1)):
            grads[f"dA{l}"], grads[f"dW{l + 1}"], grads[f"db{l + 1}"] = \
                correct_linear_activation_backward(grads[f"dA{l + 1}"], caches[l], "sigmoid")
        return grads
    assert diagnose(L_model_backward).codes == {"wrong_activation"}


def test_diagnose_L_model_missing_keys():
    from chainrule.explain.examples import correct_L_model_backward

    def L_model_backward(AL, Y, caches):
        grads = correct_L_model_backward(AL, Y, caches)
        del grads["dA0"]
        return grads
    report = diagnose(L_model_backward)
    assert report.codes == {"wrong_outputs"}
    assert report.diagnoses[0].where == ["dA0"]


def test_diagnose_unrecognised_mistake_is_reported_not_named():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        dW = np.dot(dZ, A_prev.T) / m + 0.01 * np.arange(W.size).reshape(W.shape)
        return np.dot(W.T, dZ), dW, np.sum(dZ, axis=1, keepdims=True) / m
    report = diagnose(linear_backward)
    assert report.codes == {"unrecognised"}
    assert report.diagnoses[0].where == ["dW"]
    assert "max |actual - expected|" in report.diagnoses[0].detail


@pytest.mark.parametrize("returned", [None, 3.0, "dW", (1, 2, 3, 4)])
def test_diagnose_odd_return_values(returned):
    def linear_backward(dZ, cache):
        return returned
    report = diagnose(linear_backward)
    assert report.codes == {"wrong_outputs"} or report.codes == {"unrecognised"}
    assert not report.ok


def test_diagnose_wrong_signature_is_a_refusal_naming_the_course_signature():
    def linear_backward(dZ):
        return dZ
    with pytest.raises(InputError, match=r"expected linear_backward\(dZ, cache\)"):
        diagnose(linear_backward)


def test_diagnose_wrong_signature_with_kind_is_a_signature_diagnosis():
    def linear_backward(dZ):
        return dZ
    report = diagnose(linear_backward, kind="linear_backward")
    assert report.codes == {"signature"}
    assert "TypeError" in report.diagnoses[0].detail


def test_diagnose_convention_J():
    fn = CATALOGUE["linear_backward_missing_1_over_m"][0]
    assert diagnose(fn, convention="J").ok
    assert diagnose(correct_linear_backward, convention="J").codes == {"double_1_over_m"}


def test_diagnose_does_not_leak_state_between_calls():
    a = diagnose(correct_linear_backward, seed=3)
    b = diagnose(correct_linear_backward, seed=3)
    assert a.ok and b.ok and a.checked == b.checked


def test_diagnose_bad_arguments():
    with pytest.raises(InputError):
        diagnose(correct_linear_backward, kind="forward")
    with pytest.raises(InputError):
        diagnose(correct_linear_backward, convention="K")
    with pytest.raises(InputError):
        detect_kind(lambda a, b, c, d: None)


def test_relu_backward_helper_copies():
    dA = np.array([[1.0, -1.0]])
    relu_backward(dA, np.array([[-1.0, 1.0]]))
    assert dA.tolist() == [[1.0, -1.0]]


# Correct code in other styles must not be diagnosed (no false alarms).

def _lb_matmul(dZ, cache):
    A_prev, W, b = cache
    m = dZ.shape[1]
    return W.T @ dZ, (dZ @ A_prev.T) / m, dZ.sum(1, keepdims=True) / m


def _lb_einsum(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[-1]
    dW = np.einsum("ik,jk->ij", dZ, A_prev) / m
    db = np.mean(dZ, axis=1).reshape(-1, 1)
    return np.matmul(W.T, dZ), dW, db


def _lab_one_line(dA, cache, activation):
    (A_prev, W, b), Z = cache
    if activation == "relu":
        dZ = dA * (Z > 0)
    else:
        A = 1 / (1 + np.exp(-Z))
        dZ = dA * A * (1 - A)
    return _lb_matmul(dZ, (A_prev, W, b))


def _L_model_shortcut(AL, Y, caches):
    grads = {}
    L = len(caches)
    dZ = AL - Y  # sigmoid + cross-entropy
    for l in range(L, 0, -1):
        (A_prev, W, b), Z = caches[l - 1]
        if l < L:
            dZ = grads[f"dA{l}"] * (Z > 0)
        grads[f"dA{l - 1}"], grads[f"dW{l}"], grads[f"db{l}"] = _lb_matmul(dZ, (A_prev, W, b))
    return grads


@pytest.mark.parametrize("fn, kind", [(_lb_matmul, "linear_backward"),
                                      (_lb_einsum, "linear_backward"),
                                      (_lab_one_line, "linear_activation_backward"),
                                      (_L_model_shortcut, "L_model_backward")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diagnose_correct_variants_are_clean(fn, kind, seed):
    report = diagnose(fn, kind=kind, seed=seed)
    assert report.ok, str(report)


@pytest.mark.parametrize("name", [n for n, (_, _, e) in CATALOGUE.items() if e])
@pytest.mark.parametrize("seed", [1, 7])
def test_diagnose_catalogue_with_other_seeds(name, seed):
    fn, kind, expected = CATALOGUE[name]
    assert diagnose(fn, kind=kind, seed=seed).codes == expected


# The smaller points of issue 13.

def test_diagnose_error_in_a_helper_is_not_a_signature_problem():
    def helper(dZ):
        return dZ[:, 10]  # an index error inside the helper, on every shape

    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        return helper(dZ), dZ, dZ

    report = diagnose(linear_backward)
    assert report.codes == {"raises_in_helper"}
    assert "IndexError" in report.diagnoses[0].detail
    assert report.diagnoses[0].line.startswith("in helper, ")
    assert "return dZ[:, 10]" in report.diagnoses[0].line


def test_diagnose_error_raised_inside_numpy_is_the_learners_line():
    # np.squre: numpy's module __getattr__ raises; the mistake is the learner's own line, not a
    # helper's (issue 25's corpus 3), and the line quoted is the learner's
    def compute_cost_with_regularization(A3, Y, parameters, lambd):
        m = Y.shape[1]
        cross_entropy = -np.sum(Y * np.log(A3) + (1 - Y) * np.log(1 - A3)) / m
        l2 = np.sum(np.square(parameters["W1"])) + np.sum(np.squre(parameters["W2"]))
        return cross_entropy + lambd / (2 * m) * l2

    report = diagnose(compute_cost_with_regularization)
    assert report.codes == {"raises"}, str(report)
    (d,) = report.diagnoses
    assert "AttributeError" in d.detail and "np.squre" in d.line
    assert d.line.startswith("in compute_cost_with_regularization, ")


def test_diagnose_squeeze_undoing_keepdims_says_so():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        db = np.squeeze(np.sum(dZ, axis=1, keepdims=True)) / m
        return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, db

    (d,) = diagnose(linear_backward).diagnoses
    assert d.code == "missing_keepdims" and "np.squeeze removes the axis again" in d.detail


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_diagnose_np_matrix_result_is_named():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        return (np.asmatrix(np.dot(W.T, dZ)), np.dot(dZ, A_prev.T) / m,
                np.sum(dZ, axis=1, keepdims=True) / m)

    assert diagnose(linear_backward).codes == {"np_matrix"}


def test_unknown_function_refusal_names_signatures_the_wrapper_and_the_cli_flag():
    def my_backprop(X, Y, params, lr):
        return None

    with pytest.raises(InputError) as exc:
        diagnose(my_backprop)
    text = str(exc.value)
    assert "backward_propagation_with_dropout(X, Y, cache, keep_prob)" in text
    assert "gradient_check(fn, X, Y, parameters=parameters)" in text
    assert "--kind KIND" in text


def test_correct_block_is_in_computation_order():
    from chainrule.explain.examples import L_model_backward_wrong_cache

    report = diagnose(L_model_backward_wrong_cache)
    lhs = [f.split(" = ")[0] for d in report.diagnoses for f in d.formulas if " = " in f]
    order = [x for x in lhs if x[:2] in ("dZ", "dW", "db", "dA")]
    layer = [int(x[2:]) + (x[:2] == "dA") for x in order]
    assert layer == sorted(layer, reverse=True), order


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_diagnose_any_return_value_is_a_finding_never_a_crash_or_a_clean_bill():
    from chainrule.explain.doctor import ALL_KINDS

    junk = [None, 5, "x", {}, {"dW1": "a", "db1": None}, (1, 2), [np.zeros(3)] * 3,
            np.zeros((2, 2)), ({"dw": "q", "db": [1]}, "c"), (None,) * 5, float("nan"),
            np.matrix([[1.0]])]
    for kind in ALL_KINDS:
        for value in junk:
            report = diagnose(lambda *args, _v=value: _v, kind=kind)
            assert not report.ok and str(report), (kind, value)
