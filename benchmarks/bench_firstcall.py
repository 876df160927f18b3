"""Cold costs, each in a fresh interpreter (``timeraw_``): importing a backend, and the
first training step including JIT compilation with an empty numba cache."""

from . import common

_SETUP = """
import os, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="chainrule-asv-numba-")
import numpy as np
rng = np.random.default_rng(0)
X = rng.random(({n0}, {m})).astype("{dtype}")
Y = (rng.random(({nL}, {m})) < 0.5).astype("{dtype}")
if "{output}" == "softmax":
    Y = np.zeros(({nL}, {m}), dtype="{dtype}")
    Y[rng.integers(0, {nL}, {m}), np.arange({m})] = 1
dims = {dims}
Ws = [(rng.standard_normal((dims[l], dims[l - 1])) * np.sqrt(2 / dims[l - 1])).astype("{dtype}")
      for l in range(1, len(dims))]
bs = [np.zeros((dims[l], 1), dtype="{dtype}") for l in range(1, len(dims))]
"""

_FIRST_STEP = """
from chainrule import reference as ref
try:
    from chainrule.training.step import train_step
except ImportError:  # commits before training/step.py: the backends' train_step op
    def train_step(ops, *args):
        return ops.train_step(*args)
try:
    from chainrule.backends import registry as _dispatch
except ImportError:  # commits before the backends/ package
    from chainrule import _dispatch
ops = _dispatch.Ops("{backend}")
acts = [ref.parse_activation("{hidden}")] * (len(dims) - 2) + [ref.parse_activation("{output}")]
train_step(ops, X, Y, Ws, bs, acts, "{loss}", 0.01, 0.0, None, False)
"""


class FirstCall:
    # size barely matters for compile time: the smallest workloads only
    params = [common.BACKENDS, ["planar", "mnist-like"], common.DTYPES]
    param_names = common.PARAM_NAMES
    repeat = (1, 3, 60.0)
    timeout = 600

    def setup(self, backend, workload, dtype):
        common.ops(backend)  # n/a when the backend does not import here

    def timeraw_import_backend(self, backend, workload, dtype):
        return ("try:\n    from chainrule.backends import registry as _dispatch\n"
                "except ImportError:\n    from chainrule import _dispatch\n"
                f'_dispatch.Ops("{backend}")')

    def timeraw_first_train_step(self, backend, workload, dtype):
        w = common.WORKLOADS[workload]
        dims = w.layer_dims
        fields = dict(n0=dims[0], nL=dims[-1], m=w.m, dtype=dtype, dims=list(dims),
                      output=w.output, hidden=w.hidden, backend=backend,
                      loss=common.problem(workload, dtype, m=1).loss)
        return _FIRST_STEP.format(**fields), _SETUP.format(**fields)
