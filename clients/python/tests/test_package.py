"""The distribution as a user gets it, and its models as the contract states them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1]


def test_models_match_the_openapi_document() -> None:
    """models.py is what datamodel-code-generator makes of docs/openapi.json today."""
    check = subprocess.run(
        [sys.executable, str(CLIENT / "scripts" / "models.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_wheel_carries_the_package_its_types_and_the_command(tmp_path: Path) -> None:
    """What ``pip install ./clients/python`` installs: built as pip builds it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(CLIENT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("mmms_client-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    modules = ("__init__", "client", "async_client", "models", "errors", "routes", "cli/__init__")
    for module in (*modules, "cli/mail", "cli/keys", "cli/suppressions", "cli/support"):
        assert f"mmms_client/{module}.py" in names
    assert "mmms_client/py.typed" in names
    assert "mmms = mmms_client.cli:main" in entry_points
    assert "Name: mmms-client" in metadata
    assert "Requires-Dist: httpx" in metadata
