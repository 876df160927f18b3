"""cffi out-of-line API build of ``chainrule._cdense`` from ``dense.h`` and ``dense.c``."""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
with open(os.path.join(HERE, "dense.h")) as f:
    ffibuilder.cdef("".join(line for line in f if not line.lstrip().startswith(("#", "/*", " *"))))
ffibuilder.set_source(
    "chainrule._cdense",
    '#include "dense.h"',
    sources=["csrc/dense.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O3", "-std=c99"],
    optional=True,  # no compiler: a build warning, and the C backend reports itself unavailable
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
