"""Package discovery: ``web/`` and ``workers/`` install under the ``callcenter`` namespace.

Everything else about the distribution is in pyproject.toml. The top-level folders the
owner asked for (``callcenter/``, ``web/``, ``workers/``) become ``callcenter``,
``callcenter.web`` and ``callcenter.workers`` (with their sub-packages) in site-packages,
so the generic names ``web`` and ``workers`` never collide with other distributions.
"""

from setuptools import find_packages, setup

MAPPED = {"web": "callcenter.web", "workers": "callcenter.workers"}


def packages() -> list[str]:
    found = find_packages(include=["callcenter", "callcenter.*"])
    for folder, name in MAPPED.items():
        found += [
            name + pkg[len(folder) :] for pkg in find_packages(include=[folder, f"{folder}.*"])
        ]
    return found


setup(
    packages=packages(),
    package_dir={"callcenter": "callcenter", **{name: folder for folder, name in MAPPED.items()}},
)
