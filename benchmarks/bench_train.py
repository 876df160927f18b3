"""A full training step (``Network.step`` and the ``train_step`` op), the compiled
multi-step loop (``train_loop``) and the step's error against the reference."""

import numpy as np

from chainrule import Network

from . import common

LOOP_STEPS = 10


class TrainStep:
    """One full-batch step: forward, backward, SGD update."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 600

    def setup(self, backend, workload, dtype):
        self.ops = common.ops(backend)
        p = self.p = common.problem(workload, dtype)
        self.Ws, self.bs = p.copies()
        self.net = Network(p.layer_dims, hidden=p.hidden, output=p.output, dtype=dtype,
                           backend=backend)
        self.net.parameters = p.parameters()
        # warm-up: JIT and thread pools are not timed
        self.net.step(p.X, p.Y, p.learning_rate)
        self.ops.train_step(p.X, p.Y, self.Ws, self.bs, p.activations, p.loss, p.learning_rate,
                            0.0, None, False)

    def time_network_step(self, backend, workload, dtype):
        """The public path: validation, the cost and the step."""
        self.net.step(self.p.X, self.p.Y, self.p.learning_rate)

    def time_train_step(self, backend, workload, dtype):
        """The op alone (no validation, no cost)."""
        p = self.p
        self.ops.train_step(p.X, p.Y, self.Ws, self.bs, p.activations, p.loss, p.learning_rate,
                            0.0, None, False)

    def track_max_rel_error_train_step(self, backend, workload, dtype):
        """The largest relative error of the new ``W[l], b[l]`` against the reference's update."""
        p = self.p
        Ws, bs = p.copies()
        self.ops.train_step(p.X, p.Y, Ws, bs, p.activations, p.loss, p.learning_rate, 0.0, None,
                            False)
        _, _, grads = p.reference()
        actual = [W - W0 for W, W0 in zip(Ws + bs, p.Ws + p.bs)]
        expected = ([-p.learning_rate * grads[f"dW{l}"] for l in range(1, p.L + 1)]
                    + [-p.learning_rate * grads[f"db{l}"] for l in range(1, p.L + 1)])
        return common.max_rel_error(actual, expected)

    track_max_rel_error_train_step.unit = "relative error"


class TrainLoop:
    """``train_loop``: LOOP_STEPS steps without returning to Python (the cost once)."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 600

    def setup(self, backend, workload, dtype):
        self.ops = common.ops(backend)
        p = self.p = common.problem(workload, dtype)
        self.Ws, self.bs = p.copies()
        n_done, _ = self.ops.train_loop(p.X, p.Y, self.Ws, self.bs, p.activations, p.loss,
                                        p.learning_rate, 0.0, 2, 2)  # warm-up
        if n_done != 2:
            raise RuntimeError(f"train_loop stopped after {n_done} of 2 steps")

    def time_train_loop(self, backend, workload, dtype):
        p = self.p
        self.ops.train_loop(p.X, p.Y, self.Ws, self.bs, p.activations, p.loss, p.learning_rate,
                            0.0, LOOP_STEPS, LOOP_STEPS)

    def track_seconds_per_step_train_loop(self, backend, workload, dtype):
        """The loop's time divided by its steps: comparable with ``TrainStep.time_train_step``."""
        import time

        p = self.p
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            self.ops.train_loop(p.X, p.Y, self.Ws, self.bs, p.activations, p.loss,
                                p.learning_rate, 0.0, LOOP_STEPS, LOOP_STEPS)
            best = min(best, (time.perf_counter() - t0) / LOOP_STEPS)
        return best

    track_seconds_per_step_train_loop.unit = "seconds"
