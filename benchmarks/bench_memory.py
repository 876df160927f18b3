"""Peak memory (whole process, as asv measures it) of a training step.

``peakmem_reference`` does nothing after the same setup: it is the baseline (imports,
data, parameters; numba alone adds about 170 MB), so compare a step with the reference
of the same backend, not across backends.
"""

from . import common
try:
    from chainrule.training.step import train_step
except ImportError:  # commits before training/step.py: the backends' train_step op
    def train_step(ops, *args):
        return ops.train_step(*args)


class Memory:
    params = common.PARAMS
    param_names = common.PARAM_NAMES
    timeout = 600

    def setup(self, backend, workload, dtype):
        self.ops = common.ops(backend)
        p = self.p = common.problem(workload, dtype)
        self.Ws, self.bs = p.copies()
        # Warm up on one example: compiled code is loaded (numba specialises on dtypes,
        # not shapes) while the process's peak stays below what a full step needs;
        # a full-size warm-up would raise the peak that asv reads and hide the step.
        tiny = common.problem(workload, dtype, m=1)
        train_step(self.ops, tiny.X, tiny.Y, tiny.Ws, tiny.bs, tiny.activations, tiny.loss,
                            tiny.learning_rate, 0.0, None, False)

    def peakmem_reference(self, backend, workload, dtype):
        pass

    def peakmem_train_step(self, backend, workload, dtype):
        p = self.p
        train_step(self.ops, p.X, p.Y, self.Ws, self.bs, p.activations, p.loss, p.learning_rate,
                            0.0, None, False)
