"""Map the four room folders at the repository root into the single import package ``rlvr``.

``verifiers/``, ``sandbox/``, ``envs/`` and ``trainer/`` install as ``rlvr.verifiers`` etc.; no
top-level package of those names is ever installed (``verifiers`` is another PyPI project).
Sub-packages are discovered, so a new folder with an ``__init__.py`` needs no edit here.
"""

from setuptools import find_packages, setup

ROOMS = ("verifiers", "sandbox", "envs", "trainer")

packages = ["rlvr"] + [f"rlvr.{p}" for p in find_packages(where="rlvr")]
package_dir = {"rlvr": "rlvr"}
for room in ROOMS:
    packages.append(f"rlvr.{room}")
    package_dir[f"rlvr.{room}"] = room
    for sub in find_packages(where=room):
        packages.append(f"rlvr.{room}.{sub}")
        package_dir[f"rlvr.{room}.{sub}"] = f"{room}/{sub.replace('.', '/')}"

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.json", "*.jsonl", "*.yaml", "*.jinja", "*.txt", "*.js", "*.css"]},
    include_package_data=True,
)
