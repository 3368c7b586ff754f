"""What setup.cfg cannot declare: the wheel carries the dashboard (static/), the docs, the deploy files, the shipped
scenarios and the browser libraries from node_modules/ in stockquest_files/, laid out as in the checkout, where the
installed stockquest.py looks for them. The libraries are npm's (package.json), never committed: a build without
`npm ci` first still works, warns here, and the installed server names what is missing at every start."""

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
FILES_PACKAGE = "stockquest_files"  # must match stockquest.py's PACKAGED_FILES
FOLDERS = ("static", "docs", "deploy", "scenarios")
LIBRARY_FILES = ("dist", "LICENSE", "package.json")  # what the page loads, plus the licence and version


def browser_libraries() -> list[str]:
    """package.json's dependencies (its devDependencies are Node tools for the tests)."""
    return sorted(json.loads((HERE / "package.json").read_text())["dependencies"])


class BuildWithFiles(build_py):
    """build_py, then the files copied fresh (an old build/ folder must not leak removed files into a wheel)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install runs from the checkout, which has the files already
            return
        target = Path(self.build_lib) / FILES_PACKAGE
        shutil.rmtree(target, ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for folder in FOLDERS:
            shutil.copytree(HERE / folder, target / folder, ignore=ignore)
        for library in browser_libraries():
            source = HERE / "node_modules" / library
            if not (source / "dist").is_dir():
                self.warn(f"{source / 'dist'} is missing: the dashboard will lack {library}; "
                          "run `npm ci` before building for a complete package")
                continue
            (target / "node_modules" / library).mkdir(parents=True)
            for name in LIBRARY_FILES:
                copy = shutil.copytree if (source / name).is_dir() else shutil.copy2
                copy(source / name, target / "node_modules" / library / name)


setup(cmdclass={"build_py": BuildWithFiles})
