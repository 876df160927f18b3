"""The training loop users run: ``Network.fit`` with shuffled Adam mini-batches, whole.

The workloads of ``chainrule bench --train`` (``chainrule.bench.TRAIN_WORKLOADS``) at their
``--quick`` sizes (digits 2 epochs, mnist-like 3000 x 784, tabular 5000 x 20; a fraction of
a second each); ``CHAINRULE_BENCH_FULL=1``: their full sizes. The peers and the GEMM floor
of the same fits are in ``chainrule bench --train``.
"""

from chainrule import Network

from . import common


class Fit:
    params = [common.BACKENDS, common.TRAIN_WORKLOAD_NAMES]
    param_names = ["backend", "workload"]
    timeout = 600

    def setup(self, backend, workload):
        common.ops(backend)  # n/a when the backend does not import here
        self.data = common.train_data(workload)
        self.w = self.data.workload
        self.fit(backend)  # warm-up: JIT and thread pools are not timed

    def fit(self, backend):
        w = self.w
        net = Network(list(w.layer_dims), hidden=w.hidden, output=w.output, dtype=w.dtype,
                      backend=backend, seed=0, batch_norm=w.batch_norm)
        net.fit(self.data.X, self.data.Y, epochs=w.epochs, learning_rate=w.learning_rate,
                optimizer="adam", mini_batch_size=w.batch_size, progress=False)

    def time_fit(self, backend, workload):
        self.fit(backend)
