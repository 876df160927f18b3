"""What the public calls add to the backend's own op on a small network (issue 12 §4): the
validation at the boundary, the rollback guard of ``step``, the caches of ``forward``.

``Network.step(X, Y, lr)`` against ``train_step(..., compute_cost=True)`` (what it calls),
``Network.forward``/``predict`` against the ``forward`` op, on the model's own arrays. The
``track_*_ratio`` methods time both sides interleaved (medians of rounds) and return
public / op: the goal is at most 1.3 on planar.
"""

import statistics
import timeit

from chainrule import Network

from . import common
try:
    from chainrule.training.step import train_step
except ImportError:  # commits before training/step.py: the backends' train_step op
    def train_step(ops, *args):
        return ops.train_step(*args)

WORKLOADS = ["planar"]
ROUNDS, CALLS = 15, 100


class PublicCallOverhead:
    params = [common.BACKENDS, WORKLOADS, common.DTYPES]
    param_names = common.PARAM_NAMES
    timeout = 300

    def setup(self, backend, workload, dtype):
        common.ops(backend)  # NotImplementedError (n/a) when the backend is missing
        p = self.p = common.problem(workload, dtype)
        net = self.net = Network(p.layer_dims, hidden=p.hidden, output=p.output, dtype=dtype,
                                 backend=backend)
        net.parameters = p.parameters()
        self.ops = net._ops  # the model's backend ops, as its calls use them
        self.Ws, self.bs = net.layer_arrays()
        self.lr = 1e-6  # the parameters barely move however many steps run
        self.pairs = {
            "step": (lambda: net.step(p.X, p.Y, self.lr), self._op_step),
            "forward": (lambda: net.forward(p.X), self._op_forward),
            "predict": (lambda: net.predict(p.X), self._op_forward),
        }
        for public, op in self.pairs.values():  # warm-up: JIT, plans and workspaces
            public()
            op()

    def _op_step(self):
        p = self.p
        train_step(self.ops, p.X, p.Y, self.Ws, self.bs, self.net.activations, self.net.loss,
                            self.lr, 0.0, None, True)

    def _op_forward(self):
        self.ops.forward(self.p.X, self.Ws, self.bs, self.net.activations)

    def _ratio(self, name):
        public, op = self.pairs[name]
        ratios = []
        for _ in range(ROUNDS):
            t_public = timeit.timeit(public, number=CALLS)
            ratios.append(t_public / timeit.timeit(op, number=CALLS))
        return statistics.median(ratios)

    def time_network_step(self, backend, workload, dtype):
        self.net.step(self.p.X, self.p.Y, self.lr)

    def time_op_train_step(self, backend, workload, dtype):
        self._op_step()

    def time_network_forward(self, backend, workload, dtype):
        self.net.forward(self.p.X)

    def time_network_predict(self, backend, workload, dtype):
        self.net.predict(self.p.X)

    def time_op_forward(self, backend, workload, dtype):
        self._op_forward()

    def track_step_ratio(self, backend, workload, dtype):
        return self._ratio("step")

    def track_forward_ratio(self, backend, workload, dtype):
        return self._ratio("forward")

    def track_predict_ratio(self, backend, workload, dtype):
        return self._ratio("predict")

    track_step_ratio.unit = "public / op"
    track_forward_ratio.unit = "public / op"
    track_predict_ratio.unit = "public / op"
