"""One benchmark harness, used by ``chainrule bench``, the asv suites (``benchmarks/``) and
any script.

- :mod:`~chainrule.bench.workloads`: the step workloads (``WORKLOADS``, ``Problem``) and the
  whole-fit workloads (``TRAIN_WORKLOADS``, ``train_data``);
- :mod:`~chainrule.bench.peers`: one full-batch step of each backend and each peer
  (course-style NumPy, PyTorch, JAX, scikit-learn);
- :mod:`~chainrule.bench.floor`: the GEMM-only floor of a step and of a mini-batch fit;
- :mod:`~chainrule.bench.timing`: interleaved timing and peak memory;
- :mod:`~chainrule.bench.env`: CPU, BLAS libraries, load, thread limits and pinning;
- :mod:`~chainrule.bench.comparison`: the step comparison (``chainrule bench``);
- :mod:`~chainrule.bench.train`: the fit comparison (``chainrule bench --train``);
- :mod:`~chainrule.bench.calibrate`: the table behind ``backend="auto"`` (``--calibrate``);
- :mod:`~chainrule.bench.cli`: the command line.

Peers are imported only when an implementation is set up, so importing this package
costs little.
"""

from .calibrate import (CALIBRATION_GRID, QUICK_CALIBRATION_GRID, calibrate, first_use_seconds,
                        fit_networks, rule_summary, write_table)
from .cli import add_parser, main, run_bench
from .comparison import (Row, check_implementation, compare, implementation_names,
                      make_implementation, markdown)
from .env import blas_info, cpu_model, versions
from .timing import peak_memory, time_interleaved
from .train import compare_train, fit_implementation_names, make_fit_implementation, \
    markdown_train
from .workloads import (CHECK_RTOL, LEARNING_RATE, QUICK_WORKLOADS, TRAIN_WORKLOADS, WORKLOADS,
                        Problem, TrainWorkload, Workload, make_problem, reference_step,
                        train_data, update_error, workload_problem)

__all__ = [
    "CALIBRATION_GRID", "CHECK_RTOL", "LEARNING_RATE", "QUICK_CALIBRATION_GRID",
    "QUICK_WORKLOADS", "TRAIN_WORKLOADS", "WORKLOADS", "Problem", "Row", "TrainWorkload",
    "Workload", "add_parser", "blas_info", "calibrate", "check_implementation", "compare",
    "compare_train", "first_use_seconds", "cpu_model", "fit_implementation_names",
    "fit_networks",
    "implementation_names", "main", "make_fit_implementation", "make_implementation",
    "make_problem", "markdown", "markdown_train", "peak_memory", "reference_step",
    "rule_summary", "run_bench", "time_interleaved", "train_data", "update_error", "versions",
    "workload_problem", "write_table",
]
