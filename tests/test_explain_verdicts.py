"""The doctor's per-output, per-layer verdicts (issue 25): wrong_shape, wrong_m,
cost_missing_term with its factor, a partial Adam mix-up, a copied loop together with a
squeezed db, a raise on the course's shapes as the verdict, and kind detection by the
parameter names and a trial call."""

# ruff: noqa: N802, N803, N806

import numpy as np

from chainrule.explain import diagnose
from chainrule.explain.course_style import sigmoid, sigmoid_backward
from chainrule.explain.doctor import detect_kind


def test_wrong_m_in_propagate_names_every_output():
    def propagate(w, b, X, Y):
        m = X.shape[0]  # n_x, not m
        A = sigmoid(np.dot(w.T, X) + b)
        cost = -1 / m * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
        dw = 1 / m * np.dot(X, (A - Y).T)
        db = 1 / m * np.sum(A - Y)
        return {"dw": dw, "db": db}, cost

    report = diagnose(propagate)
    assert report.codes == {"wrong_m"}, str(report)
    (d,) = report.diagnoses
    assert set(d.where) == {"grads['dw']", "grads['db']", "cost"}
    assert "X.shape[0]" in d.detail


def test_cost_missing_term_with_its_factor():
    def compute_cost(AL, Y):
        return float(-np.sum(Y * np.log(AL)))  # no (1 - Y) term, no 1/m

    report = diagnose(compute_cost)
    assert report.codes == {"cost_missing_term", "missing_1_over_m"}, str(report)


def test_cost_missing_term_alone():
    def compute_cost(AL, Y):
        m = Y.shape[1]
        return float(-np.sum((1 - Y) * np.log(1 - AL)) / m)

    assert diagnose(compute_cost).codes == {"cost_missing_term"}


def test_l2_cost_missing_one_layer_is_named_without_the_precedence_hint():
    def compute_cost_with_regularization(A3, Y, parameters, lambd):
        m = Y.shape[1]
        ce = -np.sum(Y * np.log(A3) + (1 - Y) * np.log(1 - A3)) / m
        W1, W2 = parameters["W1"], parameters["W2"]
        return ce + lambd / (2 * m) * (np.sum(np.square(W1)) + np.sum(np.square(W2)))

    report = diagnose(compute_cost_with_regularization)
    assert report.codes == {"l2_cost_wrong"}, str(report)
    assert "W3" in report.diagnoses[0].detail
    assert "lambd/2*m" not in report.diagnoses[0].detail


def test_partial_adam_beta_mixup_in_the_second_moment_only():
    def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01,
                                    beta1=0.9, beta2=0.999, epsilon=1e-8):
        L = len(parameters) // 2
        for l in range(1, L + 1):
            for p in "Wb":
                k = "d" + p + str(l)
                v[k] = beta1 * v[k] + (1 - beta1) * grads[k]
                s[k] = beta1 * s[k] + (1 - beta2) * grads[k] ** 2  # β1 where β2 belongs
                vc = v[k] / (1 - beta1 ** t)
                sc = s[k] / (1 - beta2 ** t)
                parameters[p + str(l)] -= learning_rate * vc / (np.sqrt(sc) + epsilon)
        return parameters, v, s

    report = diagnose(update_parameters_with_adam)
    assert report.codes == {"adam_beta_partial"}, str(report)


def test_bias_update_with_W_values_is_wrong_shape_with_the_shapes_first():
    def update_parameters(parameters, grads, learning_rate):
        L = len(parameters) // 2
        for l in range(1, L + 1):
            parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads[
                "dW" + str(l)]
            parameters["b" + str(l)] = parameters["W" + str(l)]
        return parameters

    report = diagnose(update_parameters)
    assert report.codes == {"wrong_shape"}, str(report)
    assert "expected shape (5, 1), given (5, 4)" in report.diagnoses[0].detail


def test_dW_copy_of_db_is_wrong_shape():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        db = np.sum(dZ, axis=1, keepdims=True) / A_prev.shape[1]
        return np.dot(W.T, dZ), db, db

    report = diagnose(linear_backward)
    assert report.codes == {"wrong_shape"}, str(report)
    assert report.diagnoses[0].where == ["dW"]


def test_planar_db1_of_another_shape_is_wrong_shape():
    def backward_propagation(parameters, cache, X, Y):
        m = X.shape[1]
        W2 = parameters["W2"]
        A1, A2 = cache["A1"], cache["A2"]
        dZ2 = A2 - Y
        dZ1 = np.dot(W2.T, dZ2) * (1 - A1 ** 2)
        return {"dW1": np.dot(dZ1, X.T) / m, "db1": np.dot(dZ1, X.T) / m,
                "dW2": np.dot(dZ2, A1.T) / m, "db2": np.sum(dZ2, axis=1, keepdims=True) / m}

    report = diagnose(backward_propagation)
    assert report.codes == {"wrong_shape"}, str(report)
    assert report.diagnoses[0].layers == [1]


def test_copied_loop_and_squeezed_db_are_named_together():
    def L_model_backward(AL, Y, caches):
        grads = {}
        L = len(caches)
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        for l in reversed(range(L)):
            (A_prev, W, b), Z = caches[l]
            dZ = sigmoid_backward(dAL, Z)  # the output layer's step, copied to every layer
            m = A_prev.shape[1]
            grads["dA" + str(l)] = np.dot(W.T, dZ)
            grads["dW" + str(l + 1)] = np.dot(dZ, A_prev.T) / m
            grads["db" + str(l + 1)] = np.squeeze(np.sum(dZ, axis=1, keepdims=True)) / m
        return grads

    report = diagnose(L_model_backward)
    assert report.codes == {"wrong_upstream", "wrong_activation", "missing_keepdims"}, \
        str(report)
    upstream = next(d for d in report.diagnoses if d.code == "wrong_upstream")
    assert sorted(upstream.layers) == [1, 2]


def test_a_raise_on_the_course_shapes_is_the_verdict_not_a_note():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        dW = 2 * np.dot(dZ, A_prev.T) / m  # wrong on square shapes too: only a note
        db = np.sum(dZ, axis=1, keepdims=True) / m
        dA_prev = np.dot(W, dZ.T).T if W.shape[0] == W.shape[1] else np.dot(W, dZ)
        return dA_prev, dW, db

    report = diagnose(linear_backward)
    assert report.codes == {"raises"}, str(report)
    assert "course's" in report.diagnoses[0].detail
    assert any("square shapes" in n for n in report.notes)


def test_missing_transpose_still_explains_the_raise():
    from chainrule.explain.examples import linear_backward_missing_transpose

    assert diagnose(linear_backward_missing_transpose,
                    kind="linear_backward").codes == {"missing_transpose"}


def test_kind_detection_by_parameter_names_and_a_trial_call():
    def forward_propagation(x, theta):
        return theta * x

    def fp(a, b):  # neither signature's names: the trial call decides
        return a * b
    fp.__name__ = "forward_propagation"

    def planar(X, parameters):
        W1, b1, W2, b2 = (parameters[k] for k in ("W1", "b1", "W2", "b2"))
        A1 = np.tanh(W1 @ X + b1)
        A2 = sigmoid(W2 @ A1 + b2)
        return A2, {"Z1": W1 @ X + b1, "A1": A1, "Z2": W2 @ A1 + b2, "A2": A2}
    planar.__name__ = "forward_propagation"

    assert detect_kind(forward_propagation) == "forward_propagation_1d"
    assert detect_kind(fp) == "forward_propagation_1d"
    assert detect_kind(planar) == "forward_propagation"
    assert diagnose(forward_propagation).ok
    assert diagnose(planar).ok


def test_unrecognised_only_when_nothing_explains_an_output():
    def linear_backward(dZ, cache):
        A_prev, W, b = cache
        m = A_prev.shape[1]
        dW = np.dot(dZ, A_prev.T)  # missing 1/m: explained
        db = np.sum(dZ, axis=1, keepdims=True) / m
        dA_prev = np.dot(W.T, dZ) + 0.5  # explained by nothing
        return dA_prev, dW, db

    report = diagnose(linear_backward)
    assert report.codes == {"missing_1_over_m", "unrecognised"}, str(report)
    assert next(d for d in report.diagnoses if d.code == "unrecognised").where == ["dA_prev"]


def test_dropout_mistake_in_dA2_is_tagged_layer_2():
    from chainrule.explain.examples import backward_propagation_with_dropout_not_rescaled

    report = diagnose(backward_propagation_with_dropout_not_rescaled)
    (d,) = report.diagnoses
    assert d.code == "dropout_not_rescaled"
    assert sorted(d.layers) == [1, 2] and sorted(d.where) == ["dA1", "dA2"]


def test_double_1_over_m_shows_every_correct_formula():
    from chainrule.explain.examples import L_model_backward_double_1_over_m

    (d,) = diagnose(L_model_backward_double_1_over_m).diagnoses
    named = {f.split(" = ")[0] for f in d.formulas}
    assert set(d.where) <= named, d.formulas
    assert d.line.endswith("# J's 1/m, and L's in dW too")


def test_every_code_the_doctor_emits_is_in_the_catalogue():
    import ast
    import pathlib

    from chainrule.explain import MISTAKES
    from chainrule.explain import mistakes as catalogue

    root = pathlib.Path(catalogue.__file__).parent
    emitted = set()
    for name in ("doctor.py", "course.py", "course_batchnorm.py", "_match.py", "mistakes.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # Finding("code", ...), Diagnosis("code", ...), alternatives ("code", array) and
            # (("code",), array)
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("Finding",
                                                                                "Diagnosis")
                    and node.args and isinstance(node.args[0], ast.Constant)):
                emitted.add(node.args[0].value)
            if isinstance(node, ast.Tuple) and node.elts:
                first = node.elts[0]
                if isinstance(first, ast.Tuple) and len(first.elts) == 1 and isinstance(
                        first.elts[0], ast.Constant) and isinstance(first.elts[0].value, str):
                    emitted.add(first.elts[0].value)
    emitted.discard("note")
    emitted = {c for c in emitted if c.replace("_", "").isalnum() and c.islower()}
    assert emitted, "no codes found"
    missing = sorted(c for c in emitted if c not in MISTAKES)
    assert not missing, missing
    assert all(m.title and m.why for m in MISTAKES.values())
    assert all(code in MISTAKES for code in catalogue._SEEN)
