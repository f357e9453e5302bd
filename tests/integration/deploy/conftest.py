"""`infra/package.sh` run once per test session on a copy of the project, and a way to read
what the packaged template would mean once deployed (intrinsics resolved, IAM evaluated).

The copy keeps `chalice package` (which writes `.chalice/deployments/`) out of the working
tree and lets two xdist workers package at once. Packaging takes about 5 s (pip fetches the
Lambda wheels of requirements.txt); a second stage reuses the copy's dependency cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "mmms-test",
}


@dataclass(frozen=True)
class Packaged:
    out: Path
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def defaults(self) -> dict[str, str]:
        return {name: str(p["Default"]) for name, p in self.template.get("Parameters", {}).items()}

    def queue_name(self, logical_id: str) -> str:
        return str(self.resolve(self.resources[logical_id]["Properties"]["QueueName"]))

    def resolve(self, value: Any) -> Any:
        """The value CloudFormation would use, with Parameter defaults and test pseudo values."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            return self._get_att(*value["Fn::GetAtt"])
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"])
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, name: str) -> str:
        if "." in name and not name.startswith("AWS::"):
            return str(self._get_att(*name.split(".", 1)))
        return str(self._ref(name))

    def _ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.template.get("Parameters", {}):
            return self.defaults()[name]
        resource = self.resources[name]
        if resource["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{self.queue_name(name)}"
        return f"<{name}>"

    def _get_att(self, name: str, attribute: str) -> Any:
        resource = self.resources[name]
        if resource["Type"] == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{self.queue_name(name)}"
        return f"<{name}.{attribute}>"

    def statements(self, function: str) -> list[dict[str, Any]]:
        """The resolved IAM statements of ``function``'s execution role."""
        role_ref = self.resources[function]["Properties"]["Role"]
        assert role_ref == {"Fn::GetAtt": [role_ref["Fn::GetAtt"][0], "Arn"]}
        role = self.resources[role_ref["Fn::GetAtt"][0]]
        assert "ManagedPolicyArns" not in role["Properties"]
        return [
            self.resolve(statement)
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """IAM's answer for one identity-based policy set (Allow only; we never write Deny)."""
    assert all(s["Effect"] == "Allow" for s in statements)
    return any(
        any(fnmatchcase(action.lower(), a.lower()) for a in as_list(s["Action"]))
        and any(fnmatchcase(resource, r) for r in as_list(s["Resource"]))
        for s in statements
    )


def _copy_project(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, target / name)
    for name in ("chalicelib", "infra", "vendor"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target / name, ignore=ignore)
    (target / ".chalice").mkdir()
    for path in [ROOT / ".chalice" / "config.json", *(ROOT / ".chalice").glob("policy-*.json")]:
        shutil.copy2(path, target / ".chalice" / path.name)


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Packaged]:
    """``package(stage)``: run infra/package.sh for ``stage`` (once) and load its sam.json."""
    project = tmp_path_factory.mktemp("project")
    _copy_project(project)
    built: dict[str, Packaged] = {}

    def build(stage: str) -> Packaged:
        if stage not in built:
            out = project / "build" / stage
            env = {
                **os.environ,
                "STAGE": stage,
                "OUT": str(out),
                "CHALICE": str(BIN / "chalice"),
                "PYTHON": sys.executable,
                "AWS_DEFAULT_REGION": PSEUDO["AWS::Region"],
            }
            result = subprocess.run(
                ["bash", str(project / "infra" / "package.sh")],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
            template = json.loads((out / "sam.json").read_text(encoding="utf-8"))
            built[stage] = Packaged(out, template)
        return built[stage]

    return build


@pytest.fixture(scope="session")
def production(package: Callable[[str], Packaged]) -> Packaged:
    return package("production")


@pytest.fixture(scope="session")
def chalice_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return config
