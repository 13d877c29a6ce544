"""What an installed tmf carries besides its modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_build_includes_py_typed(tmp_path: Path) -> None:
    # setuptools' build_py copies what a wheel would hold: the modules and the package data
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                    "build_py", "--build-lib", str(tmp_path / "lib")], cwd=ROOT, check=True,
                   capture_output=True)
    assert (tmp_path / "lib" / "tmfcli" / "py.typed").is_file()
    assert (tmp_path / "lib" / "tmfcli" / "api.py").is_file()


def test_license_is_the_declared_one() -> None:
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
