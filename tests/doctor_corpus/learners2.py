"""More learner implementations from public repositories of the course's assignments (issue 25).

Transcribed in our own words from the file named in the comment above each function
(``repository : path``): local names, layout and comments are ours; the structure, the
helpers it calls, the keys, and any mistake are the learner's. The course's own helpers they
call (``relu_backward``, ``sigmoid_backward``, ``linear_activation_backward`` as the
notebook gives them...) come from :mod:`chainrule.explain.course_style`. The expected
verdict of each is in ``tests/test_explain_corpus2.py``, written from running the function
against ``chainrule.reference`` before the doctor was run on it.
"""

# ruff: noqa: N802, N803, N806, E741

import numpy as np

from chainrule.explain.course_style import linear_activation_backward as _lab
from chainrule.explain.course_style import sigmoid as _sig
from chainrule.explain.course_style import sigmoid_backward as _sigmoid_backward


# e-tsoni/Deep_Neural_Network_for_Image_Binary_Classification : propagate.py
def propagate__etsoni(w, b, X, Y):
    n_examples = X.shape[1]
    A = _sig(np.dot(w.T, X) + b)
    cost = -(1 / n_examples) * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    grads = {"dw": (1 / n_examples) * np.dot(X, (A - Y).T),
             "db": (1 / n_examples) * np.sum(A - Y)}
    return grads, cost


# JiangtianPan/DeepLearning : propagate.py (squeezes the cost, asserts the shapes)
def propagate__jiangtian(w, b, X, Y):
    m = X.shape[1]
    A = _sig(np.dot(w.T, X) + b)
    cost = np.squeeze((-1 / m) * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)))
    dw = np.dot(X, (A - Y).T) / m
    db = np.sum(A - Y) / m
    assert dw.shape == w.shape and db.dtype == float and cost.shape == ()
    return {"dw": dw, "db": db}, cost


# Mekmoment/CatRecognition : propagate.py
def propagate__mekmoment(w, b, X, Y):
    m = X.shape[1]
    act = _sig(np.dot(w.T, X) + b)
    J = -1 / m * np.sum(Y * np.log(act) + (1 - Y) * np.log(1 - act))
    return {"dw": 1 / m * np.dot(X, (act - Y).T), "db": 1 / m * np.sum(act - Y)}, J


# haoyu987/logistic_regression : propagate.py
def propagate__haoyu(w, b, X, Y):
    m = X.shape[1]
    A = _sig(np.dot(w.T, X) + b)
    cost = np.squeeze(-1 / m * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)))
    return {"dw": 1 / m * np.dot(X, (A - Y).T), "db": 1 / m * np.sum(A - Y)}, cost


# adarshm9031/Deep_Learning_with_L_hidden_layer : L_model_backward.py
def L_model_backward__adarsh(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = _lab(
        dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = _lab(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# adarshm9031/Deep_Learning_with_L_hidden_layer : linear_backward.py
def linear_backward__adarsh(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1. / m * np.dot(dZ, A_prev.T)
    db = 1. / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    assert dA_prev.shape == A_prev.shape and dW.shape == W.shape and db.shape == b.shape
    return dA_prev, dW, db


# adarshm9031/Deep_Learning_with_L_hidden_layer : compute_cost.py (two np.dot terms)
def compute_cost__adarsh(AL, Y):
    m = Y.shape[1]
    cost = (1. / m) * (-np.dot(Y, np.log(AL).T) - np.dot(1 - Y, np.log(1 - AL).T))
    return np.squeeze(cost)


# adarshm9031/Deep_Learning_with_L_hidden_layer : linear_activation_backward.py
def linear_activation_backward__adarsh(dA, cache, activation):
    from chainrule.explain.course_style import linear_backward, relu_backward

    lin, act_cache = cache
    if activation == "relu":
        return linear_backward(relu_backward(dA, act_cache), lin)
    elif activation == "sigmoid":
        return linear_backward(_sigmoid_backward(dA, act_cache), lin)


# jeanpierrelv/Deep-Learning-Python : linear_backward.py (db squeezed, and asserted to be a
# float: only a one-unit layer passes)
def linear_backward__jeanpierre(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, cache[0].T) / m
    db = np.squeeze(np.sum(dZ, axis=1, keepdims=True)) / m
    dA_prev = np.dot(cache[1].T, dZ)
    assert isinstance(db, float)
    return dA_prev, dW, db


# jeanpierrelv/Deep-Learning-Python : L_model_backward.py (the output layer's step copied into
# the loop: every hidden layer takes sigmoid_backward of dAL; the earlier notebook's keys;
# the repository's own linear_backward above)
def L_model_backward__jeanpierre(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    last = caches[-1]
    grads["dA" + str(L)], grads["dW" + str(L)], grads["db" + str(L)] = linear_backward__jeanpierre(
        _sigmoid_backward(dAL, last[1]), last[0])
    for l in reversed(range(L - 1)):
        here = caches[l]
        dA_prev, dW, db = linear_backward__jeanpierre(_sigmoid_backward(dAL, here[1]), here[0])
        grads["dA" + str(l + 1)] = dA_prev
        grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dW, db
    return grads


# jeanpierrelv/Deep-Learning-Python : compute_cost.py
def compute_cost__jeanpierre(AL, Y):
    m = Y.shape[1]
    return np.squeeze((-1 / m) * np.sum(np.multiply(Y, np.log(AL))
                                        + np.multiply(1 - Y, np.log(1 - AL))))


# jeanpierrelv/Deep-Learning-Python : update_parameters.py
def update_parameters__jeanpierre(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        k = str(l + 1)
        parameters["W" + k] = parameters["W" + k] - learning_rate * grads["dW" + k]
        parameters["b" + k] = parameters["b" + k] - learning_rate * grads["db" + k]
    return parameters


# gpk2000/DeepLearningSnips : L_model_backward.py
def L_model_backward__gpk(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = _lab(
        dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        out = _lab(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = out
    return grads


# gpk2000/DeepLearningSnips : linear_backward.py (with @)
def linear_backward__gpk(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return W.T @ dZ, 1 / m * dZ @ A_prev.T, 1 / m * np.sum(dZ, axis=1, keepdims=True)


# ms1373/DeepNeuralNetwork : L_model_backward
def L_model_backward__ms1373(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    dA, dW, db = _lab(dAL, caches[L - 1], "sigmoid")
    grads.update({"dA" + str(L - 1): dA, "dW" + str(L): dW, "db" + str(L): db})
    for l in reversed(range(L - 1)):
        dA, dW, db = _lab(grads["dA" + str(l + 1)], caches[l], "relu")
        grads.update({"dA" + str(l): dA, "dW" + str(l + 1): dW, "db" + str(l + 1): db})
    return grads


# ms1373/DeepNeuralNetwork : linear_backward (.transpose())
def linear_backward__ms1373(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.transpose())
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    return np.dot(W.transpose(), dZ), dW, db


# nguyenlinhvn512/Optimization-Methods : update_parameters_with_adam.py
def update_parameters_with_adam__nguyen(parameters, grads, v, s, t, learning_rate=0.01,
                                         beta1=0.9, beta2=0.999, epsilon=1e-8):
    vc, sc = {}, {}
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            g = "d" + p + str(l + 1)
            v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            vc[g] = v[g] / (1 - beta1 ** t)
            s[g] = beta2 * s[g] + (1 - beta2) * (grads[g] ** 2)
            sc[g] = s[g] / (1 - beta2 ** t)
            parameters[p + str(l + 1)] = parameters[p + str(l + 1)] - learning_rate * (
                vc[g] / (np.sqrt(sc[g]) + epsilon))
    return parameters, v, s


# nguyenlinhvn512/Optimization-Methods : update_parameters_with_momentum.py
def update_parameters_with_momentum__nguyen(parameters, grads, v, beta, learning_rate):
    for l in range(len(parameters) // 2):
        i = str(l + 1)
        v["dW" + i] = beta * v["dW" + i] + (1 - beta) * grads["dW" + i]
        v["db" + i] = beta * v["db" + i] + (1 - beta) * grads["db" + i]
        parameters["W" + i] = parameters["W" + i] - learning_rate * v["dW" + i]
        parameters["b" + i] = parameters["b" + i] - learning_rate * v["db" + i]
    return parameters, v


# nguyenlinhvn512/Dropout-and-Regularization : backward_propagation_with_regularization.py
def backward_propagation_with_regularization__nguyen(X, Y, cache, lambd):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + (lambd / m) * W3
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + (lambd / m) * W2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + (lambd / m) * W1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def _reg_utils_compute_cost(a3, Y):  # reg_utils.compute_cost, as the course ships it
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return 1. / m * np.nansum(logprobs)


# nguyenlinhvn512/Dropout-and-Regularization : compute_cost_with_regularization.py
def compute_cost_with_regularization__nguyen(A3, Y, parameters, lambd):
    m = Y.shape[1]
    squares = sum(np.sum(np.square(parameters[k])) for k in ("W1", "W2", "W3"))
    return _reg_utils_compute_cost(A3, Y) + (lambd / (2 * m)) * squares


# malys23/Dog-Identifier-2L-NN : compute_cost.py (m read from Y.shape[0], which is 1)
def compute_cost__malys(AL, Y):
    m = Y.shape[0]
    J = (-1 / m) * np.sum(np.multiply(np.log(AL), Y) + np.multiply(np.log(1 - AL), 1 - Y))
    return np.squeeze(J)


# akash1shaw/cat-classifier-from-scratch : backward_propagation.py (returns dW, db, dA_prev in
# that order; db as a mean)
def linear_backward__akash(dZ, linear_cache):
    m = dZ.shape[1]
    A_prev, W, b = linear_cache
    return np.matmul(dZ, A_prev.T) / m, np.mean(dZ, axis=1, keepdims=True), np.matmul(W.T, dZ)


# akash1shaw/cat-classifier-from-scratch : backward_propagation.py (its own activation
# helpers; the same order as its linear_backward)
def linear_activation_backward__akash(dA, cache, activation):
    lin, Z = cache
    if activation == "relu":
        dZ = dA * np.where(Z > 0, 1, 0)
    elif activation == "sigmoid":
        a = 1 / (1 + np.exp(-Z))
        dZ = dA * a * (1 - a)
    elif activation == "tanh":
        dZ = dA * (1 - np.tanh(Z) ** 2)
    return linear_backward__akash(dZ, lin)


# akash1shaw/cat-classifier-from-scratch : backward_propagation.py (L_layer_backward(A_L, y,
# caches): consistent with its own helpers' order, so the gradients are right)
def L_layer_backward__akash(A_L, y, caches):
    grads = {}
    L = len(caches)
    dAL = -np.divide(y, A_L + 1e-15) + np.divide(1 - y, 1 - A_L + 1e-15)
    grads["dW" + str(L)], grads["db" + str(L)], grads["dA" + str(L - 1)] = \
        linear_activation_backward__akash(dAL, caches[L - 1], "sigmoid")
    for i in reversed(range(L - 1)):
        grads["dW" + str(i + 1)], grads["db" + str(i + 1)], grads["dA" + str(i)] = \
            linear_activation_backward__akash(grads["dA" + str(i + 1)], caches[i], "relu")
    return grads


# kewserseid/Neural-Network-Propagation : backward_propagation.py (examples as rows, softmax,
# its own signature backward_propagation(X, y, Z1, A1, Z2, A2, W2))
def backward_propagation__kewser(X, y, Z1, A1, Z2, A2, W2):
    m = X.shape[0]
    loss = -np.sum(np.log(A2[np.arange(m), y])) / m
    dZ2 = A2
    dZ2[np.arange(m), y] -= 1
    dA1 = np.dot(dZ2, W2.T)
    dZ1 = dA1 * (Z1 > 0)
    return (np.dot(X.T, dZ1) / m, np.sum(dZ1, axis=0, keepdims=True) / m,
            np.dot(A1.T, dZ2) / m, np.sum(dZ2, axis=0, keepdims=True) / m, loss)


# savorypancake/natural_born_deep_neural_network : compute_cost.py
def compute_cost__savory(AL, Y):
    m = Y.shape[1]
    return np.squeeze(-1 / m * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)))


# Roshan-Subramanian/Deep-Neural-Network---Implementation-From-Scratch-without-external-packages : update_parameters.py  # noqa: E501
def update_parameters__roshan(parameters, grads, learning_rate):
    for l in range(1, len(parameters) // 2 + 1):
        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)]
        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * grads["db" + str(l)]
    return parameters


# ulichovick/ann_fashion_mnist : cost.py (cost_function(AL, Y): the categorical
# cross-entropy, only the Y log AL term)
def cost_function__ulichovick(AL, Y):
    m = Y.shape[1]
    return -(1 / m) * np.sum(Y * np.log(AL))


# mofeiyu/dnn : dnn/train/cost_function/cost_function.py (CostFunction.cost, a static
# method with two optional parameters; only the Y log AL term)
def cost__mofeiyu(AL, Y, L=None, parameters=None):
    m = AL.shape[1]
    return np.sum(np.multiply(np.log(AL), Y)) * (-1.0) / m


# ducnguyentrungai/deep_learning : backward_propagation.py (backward(AL, Y, caches), with its
# own linear_activation_backward(dA, caches, activation_name))
def linear_activation_backward__duc(dA, caches, activation_name):
    from chainrule.explain.course_style import linear_backward, relu_backward

    linear_cache, activation_cache = caches
    if activation_name.lower() == "relu":
        dZ = relu_backward(dA, activation_cache)
    elif activation_name.lower() == "sigmoid":
        dZ = _sigmoid_backward(dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def backward__duc(AL, Y, caches):
    grads = dict()
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_activation_backward__duc(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        a, w, b = linear_activation_backward__duc(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = a, w, b
    return grads


# pdubz-sudo/neural-network-from-scratch : linear_activation_forward.py (activation_type; the
# course's linear_forward, sigmoid and relu)
def linear_activation_forward__pdubz(A_prev, W, b, activation_type):
    from chainrule.explain.course_style import linear_forward, relu_cached, sigmoid_cached

    if activation_type == "sigmoid":
        Z, linear_cache = linear_forward(A_prev, W, b)
        A, activation_cache = sigmoid_cached(Z)
    elif activation_type == "relu":
        Z, linear_cache = linear_forward(A_prev, W, b)
        A, activation_cache = relu_cached(Z)
    else:
        print("choose an activation")
    assert A.shape == (W.shape[0], A_prev.shape[1])
    return A, (linear_cache, activation_cache)


# PolarisMurray/olin_ml_project : linear_activation_forward.py
def linear_activation_forward__polaris(A_prev, W, b, activation):
    from chainrule.explain.course_style import linear_forward, relu_cached, sigmoid_cached

    Z, linear_cache = linear_forward(A_prev, W, b)
    if activation == "sigmoid":
        A, activation_cache = sigmoid_cached(Z)
    elif activation == "relu":
        A, activation_cache = relu_cached(Z)
    return A, (linear_cache, activation_cache)


# ayushsahu1999/NN_from_scratch : linear_activation_forward.py (lin_act_forward with batch
# norm: four more parameters, and b overwritten by the momentum 0.9)
def lin_act_forward__ayush(A_prev, W, b, activation, v_mu, v_sigma, gamma, beta):
    b = 0.9
    Z = np.dot(W, A_prev) + b
    mu, var = np.mean(Z, axis=1, keepdims=True), np.var(Z, axis=1, keepdims=True)
    Zt = gamma * (Z - mu) / np.sqrt(var + 1e-8) + beta
    A = 1 / (1 + np.exp(-Zt)) if activation == "sigmoid" else Zt * (Zt > 0)
    return A, ((A_prev, W, b), Z), b * v_mu + (1 - b) * mu, b * v_sigma + (1 - b) * var


# httpssayan/Deep-Learning : forward_propagation.py (forward_propagation(X, W1, b1, W2, b2),
# sigmoid in both layers, no cache)
def forward_propagation__sayan(X, W1, b1, W2, b2):
    A1 = _sig(np.dot(W1, X) + b1)
    return _sig(np.dot(W2, A1) + b2)


# nguyenlinhvn512/Optimization-Methods : update_parameters_with_gd.py
def update_parameters_with_gd__nguyen(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            k = p + str(l + 1)
            parameters[k] = parameters[k] - learning_rate * grads["d" + k]
    return parameters


# buiqtuan/python-playground :
# DeepLearningCourse/ImprovingDNNAndHyperparameterTuning/Week1/GradientChecking.py (np.dot of
# two numbers)
def forward_propagation__buiqtuan(x, theta):
    return np.dot(theta, x)


# buiqtuan/python-playground : (the same file)
def backward_propagation__buiqtuan(x, theta):
    dtheta = x
    return dtheta


# buiqtuan/python-playground : (the same file; the notebook's two planted mistakes fixed)
def backward_propagation_n__buiqtuan(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    out = {"dZ3": dZ3, "dA2": dA2, "dZ2": dZ2, "dA1": dA1, "dZ1": dZ1}
    for name, dZ, A_prev in (("3", dZ3, A2), ("2", dZ2, A1), ("1", dZ1, X)):
        out["dW" + name] = 1. / m * np.dot(dZ, A_prev.T)
        out["db" + name] = 1. / m * np.sum(dZ, axis=1, keepdims=True)
    return out


# Vedarth/Deep-Learning : Course_2/gradient_check.py (np.dot(x, theta))
def forward_propagation__vedarth(x, theta):
    return np.dot(x, theta)


# sauldnn/DL-functions : gradient-checking.py
def forward_propagation__sauldnn(x, theta):
    J = np.dot(x, theta)
    return J


# sauldnn/DL-functions : gradient-checking.py
def backward_propagation__sauldnn(x, theta):
    return x


# gpk2000/DeepLearningSnips : L_model_forward.py (keys with format and %)
def L_model_forward__gpk(X, parameters):
    from chainrule.explain.course_style import linear_activation_forward

    caches, A = [], X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = linear_activation_forward(A, parameters["W{:d}".format(l)],
                                             parameters["b{:d}".format(l)], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W%d" % L], parameters["b%d" % L],
                                          "sigmoid")
    caches.append(cache)
    assert AL.shape == (1, X.shape[1])
    return AL, caches


# jeanpierrelv/Deep-Learning-Python : L_model_forward.py
def L_model_forward__jeanpierre(X, parameters):
    from chainrule.explain.course_style import linear_activation_forward

    caches = []
    A = X
    n_layers = len(parameters) // 2
    for l in range(1, n_layers):
        A, c = linear_activation_forward(A, parameters["W" + str(l)], parameters["b" + str(l)],
                                         activation="relu")
        caches.append(c)
    AL, c = linear_activation_forward(A, parameters["W" + str(n_layers)],
                                      parameters["b" + str(n_layers)], activation="sigmoid")
    caches.append(c)
    return AL, caches


# adarshm9031/Deep_Learning_with_L_hidden_layer : L_model_forward.py
def L_model_forward__adarsh(X, parameters):
    from chainrule.explain import course_style as laf

    caches, A = [], X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = laf.linear_activation_forward(A, parameters["W" + str(l)],
                                                 parameters["b" + str(l)], activation="relu")
        caches.append(cache)
    AL, cache = laf.linear_activation_forward(A, parameters["W" + str(L)],
                                              parameters["b" + str(L)], activation="sigmoid")
    caches.append(cache)
    return AL, caches


# ms1373/DeepNeuralNetwork : linear_forward.py
def linear_forward__ms1373(A, W, b):
    Z = np.dot(W, A) + b
    assert Z.shape == (W.shape[0], A.shape[1])
    return Z, (A, W, b)


# LenkaMilic579/Artificial-Intelligence : help_functions.py (compute_cost with an optional L2
# term for four layers; with parameters=None the plain cross-entropy through np.dot)
def compute_cost__lenka(AL, Y, parameters=None, lambd=0.1):
    m = Y.shape[1]
    cost = (1. / m) * (-np.dot(Y, np.log(AL).T) - np.dot(1 - Y, np.log(1 - AL).T))
    if parameters is not None:
        cost = cost + sum(1 / m * lambd / 2 * np.sum(np.square(parameters["W" + str(l)]))
                          for l in range(1, 5))
    return np.squeeze(cost)


# LenkaMilic579/Artificial-Intelligence : help_functions.py (linear_backward(dZ, cache, reg,
# lambd=0.1): a required third parameter)
def linear_backward__lenka(dZ, cache, reg, lambd=0.1):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1. / m * np.dot(dZ, A_prev.T) + (lambd / m * W if reg else 0)
    return np.dot(W.T, dZ), dW, 1. / m * np.sum(dZ, axis=1, keepdims=True)


# LenkaMilic579/Artificial-Intelligence : help_functions.py (L_model_backward(AL, Y, caches,
# reg=False), the earlier notebook's keys dA1..dAL, through its own helpers)
def L_model_backward__lenka(AL, Y, caches, reg=False):
    from chainrule.explain.course_style import relu_backward

    def lab(dA, cache, activation):
        lin, Z = cache
        dZ = relu_backward(dA, Z) if activation == "relu" else _sigmoid_backward(dA, Z)
        return linear_backward__lenka(dZ, lin, reg)

    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L)], grads["dW" + str(L)], grads["db" + str(L)] = lab(dAL, caches[L - 1],
                                                                          "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = lab(grads["dA" + str(l + 2)], caches[l], "relu")
        grads["dA" + str(l + 1)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = \
            dA_prev, dW, db
    return grads


# LenkaMilic579/Artificial-Intelligence : help_functions.py (W.dot(A))
def linear_forward__lenka(A, W, b):
    Z = W.dot(A) + b
    return Z, (A, W, b)


# pkraison/ex.ai : ImprovingNN1.ipynb (a Colab notebook of the gradient-checking assignment;
# its one mistake is in gradient_check_n, which the doctor does not check)
def forward_propagation__pkraison(x, theta):
    return theta * x


# pkraison/ex.ai : ImprovingNN1.ipynb
def backward_propagation__pkraison(x, theta):
    dtheta = x
    return dtheta


# pkraison/ex.ai : ImprovingNN1.ipynb (the planted * 2 and 4./m removed)
def backward_propagation_n__pkraison(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    grads = {"dZ3": A3 - Y}
    grads["dA2"] = np.dot(W3.T, grads["dZ3"])
    grads["dZ2"] = np.multiply(grads["dA2"], np.int64(A2 > 0))
    grads["dA1"] = np.dot(W2.T, grads["dZ2"])
    grads["dZ1"] = np.multiply(grads["dA1"], np.int64(A1 > 0))
    for l, A_prev in ((3, A2), (2, A1), (1, X)):
        dZ = grads["dZ" + str(l)]
        grads["dW" + str(l)] = 1. / m * np.dot(dZ, A_prev.T)
        grads["db" + str(l)] = 1. / m * np.sum(dZ, axis=1, keepdims=True)
    return grads
