"""Check what `python -m build` wrote (the README's wheel/sdist install): one wheel and one
sdist; the wheel holds every package of pyproject.toml and the compiled C module; the sdist
holds the C sources (MANIFEST.in). Usage: python .ci/check_dist.py DIST_DIR"""

import glob
import os
import re
import sys
import tarfile
import zipfile

dist = sys.argv[1]
try:
    import tomllib  # Python 3.11+

    with open("pyproject.toml", "rb") as f:
        packages = tomllib.load(f)["tool"]["setuptools"]["packages"]
except ImportError:  # 3.10: the one list this needs
    with open("pyproject.toml", encoding="utf-8") as f:
        listed = re.search(r"^packages\s*=\s*\[(.*?)\]", f.read(), re.S | re.M).group(1)
    packages = re.findall(r'"([\w.]+)"', listed)
wheels = glob.glob(os.path.join(dist, "chainrule-*.whl"))
sdists = glob.glob(os.path.join(dist, "chainrule-*.tar.gz"))
assert len(wheels) == 1 and len(sdists) == 1, (wheels, sdists)
names = zipfile.ZipFile(wheels[0]).namelist()
missing = [p for p in packages if p.replace(".", "/") + "/__init__.py" not in names]
assert not missing, f"packages missing from the wheel: {missing}"
assert any(n.startswith("chainrule/_cdense") and n.endswith((".so", ".pyd")) for n in names), \
    "the wheel has no compiled C module (is cffi in build-system.requires?)"
members = tarfile.open(sdists[0]).getnames()
for needed in ("csrc/dense.c", "csrc/dense.h", "csrc/build_ffi.py", "setup.py", "README.md"):
    assert any(m.endswith("/" + needed) for m in members), f"the sdist lacks {needed}"
print(f"dist ok: {os.path.basename(wheels[0])} ({len(names)} files), "
      f"{os.path.basename(sdists[0])} ({len(members)} files)")
