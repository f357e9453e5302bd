"""The queues-only stack (`infra/stack.py queues-template`) on moto's CloudFormation, and the
stage config that `chalice deploy` uses without it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.stack import (
    StackError,
    create_queue_stack,
    merge_template,
    queues_template,
    stage_parameters,
    with_campaigns,
)
from tests.integration.deploy.conftest import BIN, ROOT, allows
from tests.support.moto_server import MotoServer


def test_the_stack_creates_queues_whose_messages_reach_the_dlq_after_max_receives(
    moto: MotoServer,
) -> None:
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto.endpoint_url, region_name=moto.region
    )
    sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name=moto.region)

    outputs = create_queue_stack(
        cloudformation, "production", "mmms-production-queues", {"MaxReceiveCount": "2"}
    )

    processing = outputs["ProcessingQueueUrl"]
    assert processing.endswith("/mmms-email-processing-queue")
    assert outputs["ResultQueueUrl"].endswith("/mmms-email-result-queue")
    attributes = sqs.get_queue_attributes(QueueUrl=processing, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "180"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": outputs["DeadLetterQueueArn"],
        "maxReceiveCount": 2,
    }
    dead_letter = outputs["DeadLetterQueueUrl"]
    retention = sqs.get_queue_attributes(
        QueueUrl=dead_letter, AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]["MessageRetentionPeriod"]
    assert retention == "1209600"

    sqs.send_message(QueueUrl=processing, MessageBody='{"poison": true}')
    for _ in range(2):  # received and never deleted: the consumer failed it twice
        received = sqs.receive_message(QueueUrl=processing, VisibilityTimeout=0)
        assert len(received.get("Messages", [])) == 1
    assert sqs.receive_message(QueueUrl=processing, VisibilityTimeout=0).get("Messages") is None
    moved = sqs.receive_message(QueueUrl=dead_letter)["Messages"]
    assert [m["Body"] for m in moved] == ['{"poison": true}']


@pytest.mark.parametrize("stage", ["dev", "production"])
def test_the_config_names_queues_and_secrets_without_any_account_or_region(
    stage: str, chalice_config: dict[str, Any]
) -> None:
    """The repository holds names only: the template creates the queues in whatever account
    and region it is deployed to and hands their URLs to the functions. The stage's policy
    file (used by `chalice package` before the merge replaces it) names them in any account."""
    parameters = stage_parameters(stage)
    env = {
        **chalice_config.get("environment_variables", {}),
        **chalice_config["stages"][stage]["environment_variables"],
    }
    assert not {"MAIL_QUEUE_URL", "MAIL_RESULT_QUEUE_URL", "MAIL_EVENTS_QUEUE_URL"} & set(env)
    assert env["MAIL_QUEUE_NAME"] == parameters["ProcessingQueueName"]
    assert env["MAIL_RESULT_QUEUE_NAME"] == parameters["ResultQueueName"]
    assert env["MAIL_EVENTS_QUEUE_NAME"] == parameters["EventsQueueName"]
    for path in [ROOT / ".chalice" / "config.json", *(ROOT / ".chalice").glob("policy-*.json")]:
        text = path.read_text()
        assert not re.search(r"\d{12}", text), f"{path.name} holds an account id"
        assert not re.search(r"[a-z]{2}-[a-z]+-\d", text), f"{path.name} holds a region"

    policy_file = chalice_config["stages"][stage]["iam_policy_file"]
    statements = json.loads((ROOT / ".chalice" / policy_file).read_text())["Statement"]
    for account, region in (("111122223333", "eu-west-1"), ("444455556666", "us-east-2")):
        for queue in (parameters["ProcessingQueueName"], parameters["ResultQueueName"]):
            assert allows(statements, "sqs:SendMessage", f"arn:aws:sqs:{region}:{account}:{queue}")
        for secret in (parameters["DatabaseSecretName"], parameters["AdminSecretName"]):
            arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}-AbCdEf"
            assert allows(statements, "secretsmanager:GetSecretValue", arn)


def test_a_queue_url_in_the_config_is_refused(tmp_path: Path) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = config["stages"]["dev"]["environment_variables"]
    env["MAIL_QUEUE_URL"] = "https://sqs.eu-central-1.amazonaws.com/123456789012/q"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(StackError, match="MAIL_QUEUE_NAME"):
        stage_parameters("dev", path)


def test_queues_json_as_is_is_the_production_stage(tmp_path: Path) -> None:
    """infra/queues.json as is, with the campaigns' fragment merged in, is production."""
    as_is = json.loads((ROOT / "infra" / "queues.json").read_text())
    assert merge_template("production") == with_campaigns(as_is)

    queues_only = tmp_path / "queues-dev.json"
    queues_only.write_text(json.dumps(queues_template("dev")))
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), str(queues_only)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ""), ("", ""), ("mmms/production/providers", "mmms/production/providers")],
)
def test_the_provider_secret_parameter_comes_from_the_stage(
    tmp_path: Path, value: str | None, expected: str
) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = config["stages"]["production"]["environment_variables"]
    env.pop("PROVIDER_SECRET_NAME", None)
    if value is not None:
        env["PROVIDER_SECRET_NAME"] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))

    assert stage_parameters("production", path)["ProviderSecretName"] == expected
    template = merge_template("production", path)
    assert template["Parameters"]["ProviderSecretName"]["Default"] == expected
    # The queues-only stack has no functions, hence no use for the secret.
    assert "ProviderSecretName" not in queues_template("production", path)["Parameters"]


@pytest.mark.parametrize("value", ["*", "mmms/*", "mmms-provider?", "has space"])
def test_a_provider_secret_name_with_a_wildcard_is_refused(tmp_path: Path, value: str) -> None:
    """`secret:*-??????` would grant every secret in the account."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["environment_variables"]["PROVIDER_SECRET_NAME"] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(StackError, match="PROVIDER_SECRET_NAME"):
        stage_parameters("dev", path)
    # The Parameter's AllowedPattern refuses the same names as a deploy-time override.
    allowed = merge_template("dev")["Parameters"]["ProviderSecretName"]["AllowedPattern"]
    assert re.fullmatch(allowed, value) is None
    assert re.fullmatch(allowed, "") is not None
    assert re.fullmatch(allowed, "mmms/dev/providers_+=.@-1") is not None
