"""cffi out-of-line API build of ``chainrule._cdense`` from ``dense.h``, ``dense.c``,
``dense_template.h``.

``optional=True``: without a C compiler the install still succeeds, without the module, and
the "c" backend reports itself unavailable.
"""

import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _cdef_text(path):
    """The header without comments and preprocessor lines: what cffi's cdef() accepts."""
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))



def _openmp_flags():
    """``-fopenmp`` where the compiler builds and links an OpenMP program with it (GCC, and
    Clang with libomp), else none: the engine then runs on one thread. ``CHAINRULE_OPENMP=0``
    builds without it."""
    if os.environ.get("CHAINRULE_OPENMP", "1").strip() in ("0", "no", "off", "false"):
        return []
    import shutil
    import subprocess
    import sysconfig
    import tempfile
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not shutil.which(cc[0]):
        return []
    program = ("#include <omp.h>\nint main(void) { int n = 0;\n"
               "#pragma omp parallel reduction(+ : n)\nn += 1;\n"
               "return n < 1 || omp_get_max_threads() < 1; }\n")
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(program)
        try:
            done = subprocess.run([*cc, "-fopenmp", source, "-o", os.path.join(tmp, "probe")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=60)
        except (OSError, subprocess.SubprocessError):
            return []
    return ["-fopenmp"] if done.returncode == 0 else []


OPENMP = _openmp_flags()

ffibuilder = FFI()
ffibuilder.cdef(_cdef_text(os.path.join(HERE, "dense.h")))
# The training engine; train.c is compiled as part of dense.c (it #includes it at its end).
ffibuilder.cdef(_cdef_text(os.path.join(HERE, "train.h")))
ffibuilder.set_source(
    "chainrule._cdense",
    '#include "dense.h"\n#include "train.h"',
    sources=["csrc/dense.c"],
    include_dirs=["csrc"],
    depends=["csrc/dense.h", "csrc/activations.h", "csrc/dense_template.h", "csrc/train.h", "csrc/train.c",
             "csrc/train_template.h", "csrc/philox.h"],
    # -fno-math-errno: exp/tanh set no errno, so they can be hoisted and shared (the results
    # are unchanged); -fno-trapping-math: no floating-point trap is enabled, so a select
    # between two computed values may compute both (the loops of sigmoid, tanh and the
    # maxima vectorise; the results are unchanged); -ffp-contract=fast: a * b + c may be one
    # fused multiply-add (one rounding instead of two; the polynomials of exp, log and tanh
    # and the dots run shorter: a planar step's engine time 10.8 -> 9.4 us on an AVX-512
    # EPYC), as numba's kernels do ("contract" in core/_config.py); no -ffast-math, which
    # would reorder sums and drop NaN checks.
    # -fopenmp (where the compiler has it): the engine's parallel parts (train.c, "threads").
    extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math",
                        "-ffp-contract=fast", *OPENMP],
    extra_link_args=OPENMP,
    optional=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
