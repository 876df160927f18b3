"""A full training step (``Network.step`` and the ``train_step`` op), the engine's
multi-step call (``fit_epochs``) and the step's error against the reference."""

import numpy as np

from chainrule import Network

from . import common
try:
    from chainrule.training.step import train_step
except ImportError:  # commits before training/step.py: the backends' train_step op
    def train_step(ops, *args):
        return ops.train_step(*args)

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
        train_step(self.ops, p.X, p.Y, self.Ws, self.bs, p.activations, p.loss, p.learning_rate,
                            0.0, None, False)

    def time_network_step(self, backend, workload, dtype):
        """The public path: validation, the cost and the step."""
        self.net.step(self.p.X, self.p.Y, self.p.learning_rate)

    def time_train_step(self, backend, workload, dtype):
        """The op alone (no validation, no cost)."""
        p = self.p
        train_step(self.ops, p.X, p.Y, self.Ws, self.bs, p.activations, p.loss, p.learning_rate,
                            0.0, None, False)

    def track_max_rel_error_train_step(self, backend, workload, dtype):
        """The largest relative error of the new ``W[l], b[l]`` against the reference's update."""
        p = self.p
        Ws, bs = p.copies()
        train_step(self.ops, p.X, p.Y, Ws, bs, p.activations, p.loss, p.learning_rate, 0.0, None,
                            False)
        _, _, grads = p.reference()
        actual = [W - W0 for W, W0 in zip(Ws + bs, p.Ws + p.bs)]
        expected = ([-p.learning_rate * grads[f"dW{l}"] for l in range(1, p.L + 1)]
                    + [-p.learning_rate * grads[f"db{l}"] for l in range(1, p.L + 1)])
        return common.max_rel_error(actual, expected)

    track_max_rel_error_train_step.unit = "relative error"


class TrainEpochs:
    """The engine, ``fit_epochs``: LOOP_STEPS full-batch gradient-descent steps in one call
    (what ``Network.fit`` runs; the cost of every step is accumulated)."""

    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 600

    def setup(self, backend, workload, dtype):
        from chainrule.backends.plan import FitPlan
        from chainrule.optim import make_optimizer

        self.ops = common.ops(backend)
        p = self.p = common.problem(workload, dtype)
        self.Ws, self.bs = p.copies()
        opt = make_optimizer("gd")
        self.plan = FitPlan.build(p.layer_dims, p.activations, p.loss, opt,
                                  mini_batch_size=p.X.shape[1])
        self.XT, self.YT = np.ascontiguousarray(p.X.T), np.ascontiguousarray(p.Y.T)
        res = self._run(2)  # warm-up
        if res.steps != 2:
            raise RuntimeError(f"fit_epochs stopped after {res.steps} of 2 steps")

    def _run(self, n):
        return self.ops.fit_epochs(self.plan, self.XT, self.YT, None, perms=None,
                                   lrs=np.full(n, self.p.learning_rate), keys=None, k0=0,
                                   n_steps=n, t=0, state={}, Ws=self.Ws, bs=self.bs)

    def time_fit_epochs(self, backend, workload, dtype):
        self._run(LOOP_STEPS)

    def track_seconds_per_step_fit_epochs(self, backend, workload, dtype):
        """The call's time divided by its steps: comparable with ``TrainStep.time_train_step``."""
        import time

        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            self._run(LOOP_STEPS)
            best = min(best, (time.perf_counter() - t0) / LOOP_STEPS)
        return best

    track_seconds_per_step_fit_epochs.unit = "seconds"
