"""Sphinx configuration: the API reference from the docstrings (numpydoc), the guides (MyST
Markdown) and the tutorials (notebooks executed by myst-nb at every build)."""

import os
from importlib.metadata import PackageNotFoundError, version as _version

project = "chainrule"
author = "chainrule developers"
copyright = "chainrule developers"
try:
    release = _version("chainrule")
except PackageNotFoundError:  # building from a tree that was not installed
    release = "0.0.0+unknown"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    # MathJax shipped with the site: the formulas render without a network connection.
    "sphinx-mathjax-offline",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
master_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The guides start at "##" (they are also read on their own, on the repository's web page).
suppress_warnings = ["myst.header"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# numpydoc: the members are documented by autodoc; no autosummary tables of them.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False}

# The tutorials run at every build, in a real Jupyter kernel; an error fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 180
nb_execution_show_tb = True
nb_merge_streams = True
# The kernel inherits this process's environment: CI sets MPLBACKEND=Agg, which would leave
# the notebooks' figures undrawn, so the kernel gets the notebook backend.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

html_theme = "alabaster"
html_title = f"chainrule {release}"
html_theme_options = {"page_width": "1180px", "sidebar_width": "230px",
                      "description": "The course's backward pass: proven right, made fast."}
