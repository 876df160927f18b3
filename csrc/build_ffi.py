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


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text(os.path.join(HERE, "dense.h")))
# The training engine; train.c is compiled as part of dense.c (it #includes it at its end).
ffibuilder.cdef(_cdef_text(os.path.join(HERE, "train.h")))
ffibuilder.set_source(
    "chainrule._cdense",
    '#include "dense.h"\n#include "train.h"',
    sources=["csrc/dense.c"],
    include_dirs=["csrc"],
    depends=["csrc/dense.h", "csrc/dense_template.h", "csrc/train.h", "csrc/train.c",
             "csrc/train_template.h", "csrc/philox.h"],
    # -fno-math-errno: exp/tanh set no errno, so they can be hoisted and shared (the results
    # are unchanged); -fno-trapping-math: no floating-point trap is enabled, so a select
    # between two computed values may compute both (the loops of sigmoid, tanh and the
    # maxima vectorise; the results are unchanged); no -ffast-math, which would reorder
    # sums and drop NaN checks.
    extra_compile_args=["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math"],
    optional=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
