"""`infra/package.sh` run once per test session on a copy of the project, and a way to read
what the packaged template would mean once deployed (intrinsics resolved, IAM evaluated).

The copy keeps `chalice package` (which writes `.chalice/deployments/`) out of the working
tree and lets two xdist workers package at once. Packaging takes about 5 s (pip fetches the
Lambda wheels of requirements.txt); a second stage reuses the copy's dependency cache.

The copy's config has one more stage than the real one, PROVIDER_STAGE: production plus a
PROVIDER_SECRET_NAME, which neither real stage sets.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
LAMBDA_BIN = BIN.parent / "lambda" / "bin"
REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "mmms-test",
}
PROVIDER_STAGE = "production-providers"
PROVIDER_SECRET = "mmms/production/providers"


class _NoValue:
    """``{"Ref": "AWS::NoValue"}``: the list item or object key it stands for is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Packaged:
    out: Path
    template: dict[str, Any]
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def defaults(self) -> dict[str, str]:
        return {name: str(p["Default"]) for name, p in self.template.get("Parameters", {}).items()}

    def with_parameters(self, **overrides: str) -> Packaged:
        """The same template deployed with ``--parameter-overrides``."""
        unknown = set(overrides) - set(self.template.get("Parameters", {}))
        assert not unknown, unknown
        return replace(self, overrides={**self.overrides, **overrides})

    def condition(self, name: str) -> bool:
        return self._evaluate(self.template["Conditions"][name])

    def _evaluate(self, expression: dict[str, Any]) -> bool:
        ((function, arguments),) = expression.items()
        if function == "Condition":
            return self.condition(arguments)
        if function == "Fn::Equals":
            left, right = (self.resolve(a) for a in arguments)
            return bool(left == right)
        if function == "Fn::Not":
            return not self._evaluate(arguments[0])
        if function == "Fn::And":
            return all(self._evaluate(a) for a in arguments)
        if function == "Fn::Or":
            return any(self._evaluate(a) for a in arguments)
        raise AssertionError(f"unsupported condition function {function}")

    def queue_name(self, logical_id: str) -> str:
        return str(self.resolve(self.resources[logical_id]["Properties"]["QueueName"]))

    def resolve(self, value: Any) -> Any:
        """The value CloudFormation would use, with Parameter defaults and test pseudo values."""
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function in {"Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Join"}:
                return self._intrinsic(function, argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _intrinsic(self, function: str, argument: Any) -> Any:
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            return self._get_att(*argument)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items))
        if function == "Fn::If":
            condition, if_true, if_false = argument
            return self.resolve(if_true if self.condition(condition) else if_false)
        if isinstance(argument, str):  # Fn::Sub without a variable map
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), argument)
        return {function: self.resolve(argument)}

    def _sub(self, name: str) -> str:
        if "." in name and not name.startswith("AWS::"):
            return str(self._get_att(*name.split(".", 1)))
        return str(self._ref(name))

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.template.get("Parameters", {}):
            value = {**self.defaults(), **self.overrides}[name]
            if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
                return value.split(",") if value else []
            return value
        resource = self.resources[name]
        if resource["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{self.queue_name(name)}"
        return f"<{name}>"

    def _get_att(self, name: str, attribute: str) -> Any:
        resource = self.resources[name]
        if resource["Type"] == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{self.queue_name(name)}"
        return f"<{name}.{attribute}>"

    def variables(self, function: str) -> dict[str, Any]:
        """The resolved environment variables of ``function``."""
        variables: dict[str, Any] = self.resolve(
            self.resources[function]["Properties"]["Environment"]["Variables"]
        )
        return variables

    def statements(self, function: str) -> list[dict[str, Any]]:
        """The resolved IAM statements of ``function``'s execution role."""
        role_ref = self.resources[function]["Properties"]["Role"]
        assert role_ref == {"Fn::GetAtt": [role_ref["Fn::GetAtt"][0], "Arn"]}
        role = self.resources[role_ref["Fn::GetAtt"][0]]
        # AWS's VPC access policy, only when the stack runs in subnets (infra/operations.py).
        managed = self.resolve(role["Properties"]).get("ManagedPolicyArns")
        assert managed is None if not self.condition("InVpc") else len(managed) == 1
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
    for path in (ROOT / ".chalice").glob("policy-*.json"):
        shutil.copy2(path, target / ".chalice" / path.name)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    production = copy.deepcopy(config["stages"]["production"])
    production["environment_variables"]["PROVIDER_SECRET_NAME"] = PROVIDER_SECRET
    config["stages"][PROVIDER_STAGE] = production
    (target / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))


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
                # Chalice on Python 3.12 (`make test` builds .venv/lambda): SnapStart's runtime.
                "CHALICE": str(LAMBDA_BIN / "chalice"),
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
def with_provider_secret(package: Callable[[str], Packaged]) -> Packaged:
    """Production with PROVIDER_SECRET_NAME set (PROVIDER_STAGE of the copy's config)."""
    return package(PROVIDER_STAGE)


@pytest.fixture(scope="session")
def chalice_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return config
