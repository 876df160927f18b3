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


class Score:
    """``score(X, Y)`` of the fit's data (``X`` the examples-as-rows array's transpose, read
    in place) after a fit, and its ratio to the scoring forward's products alone (issue 21:
    at most 1.3 on 60000 x 784)."""

    params = [common.BACKENDS, common.TRAIN_WORKLOAD_NAMES]
    param_names = ["backend", "workload"]
    timeout = 600
    ROUNDS = 7

    def setup(self, backend, workload):
        from chainrule.bench.floor import ForwardProducts

        common.ops(backend)
        self.data = common.train_data(workload)
        w = self.data.workload
        self.net = Network(list(w.layer_dims), hidden=w.hidden, output=w.output,
                           dtype=w.dtype, backend=backend, seed=0)
        self.products = ForwardProducts(self.net.layer_arrays()[0], self.data.X.shape[1],
                                        self.data.X.dtype)
        self.score()  # warm-up: JIT, buffers
        self.products.run(self.data.X)

    def score(self):
        return self.net.score(self.data.X, self.data.Y)

    def time_score(self, backend, workload):
        self.score()

    def track_score_to_products_ratio(self, backend, workload):
        import statistics
        import time

        ratios = []
        for _ in range(self.ROUNDS):
            t0 = time.perf_counter()
            self.score()
            t1 = time.perf_counter()
            self.products.run(self.data.X)
            ratios.append((t1 - t0) / (time.perf_counter() - t1))
        return statistics.median(ratios)
