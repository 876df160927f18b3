"""The fused layer ops, one layer at a time: ``dense_forward`` and ``dense_backward``."""

from . import common


class DenseForward:
    """``Z = W A_prev + b; A = g(Z)`` for the first layer of the workload."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 300

    def setup(self, backend, workload, dtype):
        self.ops = common.ops(backend)
        p = common.problem(workload, dtype)
        self.args = (p.X, p.Ws[0], p.bs[0], p.activations[0])
        self.ops.dense_forward(*self.args)  # warm-up: JIT and caches are not timed

    def time_dense_forward(self, backend, workload, dtype):
        self.ops.dense_forward(*self.args)

    def track_max_rel_error_dense_forward(self, backend, workload, dtype):
        p = common.problem(workload, dtype)
        Z, A = self.ops.dense_forward(*self.args)
        Z_ref = p.Ws[0] @ p.X + p.bs[0]
        A_ref = common.ref.activation_forward(Z_ref, p.activations[0])
        return common.max_rel_error([Z, A], [Z_ref, A_ref])

    track_max_rel_error_dense_forward.unit = "relative error"


class DenseBackward:
    """``dW, db, dA_prev, dZ_prev`` of layer 2 (a hidden layer below it) and of layer 1
    (the input layer: no ``dA0``)."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 300

    def setup(self, backend, workload, dtype):
        self.ops = common.ops(backend)
        p = common.problem(workload, dtype)
        _, caches, grads = p.reference()
        self.grads = grads
        (A1, W2, _), _ = caches[1]
        Z1 = caches[0][1]
        self.hidden_args = (grads["dZ2"], A1, W2, Z1, p.activations[0], "L", 0.0, None, False)
        self.input_args = (grads["dZ1"], p.X, p.Ws[0], None, None, "L", 0.0, None, False)
        self.ops.dense_backward(*self.hidden_args)  # warm-up
        self.ops.dense_backward(*self.input_args)

    def time_dense_backward_hidden(self, backend, workload, dtype):
        self.ops.dense_backward(*self.hidden_args)

    def time_dense_backward_input(self, backend, workload, dtype):
        self.ops.dense_backward(*self.input_args)

    def track_max_rel_error_dense_backward(self, backend, workload, dtype):
        dZ1, dW2, db2, _ = self.ops.dense_backward(*self.hidden_args)
        g = self.grads
        return common.max_rel_error([dZ1, dW2, db2], [g["dZ1"], g["dW2"], g["db2"]])

    track_max_rel_error_dense_backward.unit = "relative error"
