"""The CloudFormation package (`infra/package.sh`): queues, the consumer's event source, the
functions' environment and least-privilege IAM, read from the generated sam.json."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.deploy.conftest import (
    BIN,
    PROVIDER_SECRET,
    PROVIDER_STAGE,
    PSEUDO,
    Packaged,
    allows,
    as_list,
)

FUNCTIONS = ("APIHandler", "ConsumeProcessingQueue", "SweepDeliveries")
ACCOUNT = f"{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
SQS_USED = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)


def sqs_arn(name: str) -> str:
    return f"arn:aws:sqs:{ACCOUNT}:{name}"


def secret_arn(name: str, suffix: str = "AbCdEf") -> str:
    return f"arn:aws:secretsmanager:{ACCOUNT}:secret:{name}-{suffix}"


def stage_env(config: dict[str, Any], stage: str) -> dict[str, str]:
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage]["environment_variables"],
    }


def test_the_package_is_a_valid_template_with_the_code(production: Packaged) -> None:
    assert production.template["Transform"] == "AWS::Serverless-2016-10-31"
    with zipfile.ZipFile(production.out / "deployment.zip") as bundle:
        names = set(bundle.namelist())
    assert {"app.py", "chalicelib/__init__.py"} <= names
    assert any(name.startswith("pydantic_core/") for name in names)

    # cfn-lint (with the SAM transform) finds neither errors nor warnings. Unmerged, Chalice
    # 1.34's template fails here: its API log group refers to a non-existent "${ApiHandler}".
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), str(production.out / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_queues_exist_with_a_dead_letter_queue_after_max_receives(
    production: Packaged, chalice_config: dict[str, Any]
) -> None:
    resources = production.resources
    queues = {name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert queues >= {
        "ProcessingQueue",
        "DeadLetterQueue",
        "ResultQueue",
        "EventsQueue",
        "EventsDeadLetterQueue",
    }

    env = stage_env(chalice_config, "production")
    assert production.queue_name("ProcessingQueue") == env["MAIL_QUEUE_NAME"]
    assert production.queue_name("ResultQueue") == env["MAIL_RESULT_QUEUE_NAME"]
    assert production.queue_name("DeadLetterQueue") == "mmms-email-processing-dlq"

    processing = resources["ProcessingQueue"]["Properties"]
    assert processing["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    max_receives = production.template["Parameters"]["MaxReceiveCount"]
    assert max_receives["Type"] == "Number"
    assert max_receives["Default"] == int(env["MAIL_QUEUE_MAX_RECEIVES"]) == 5

    # A message stays invisible long enough for 6 consumer timeouts (AWS's advice for Lambda).
    timeout = resources["ConsumeProcessingQueue"]["Properties"]["Timeout"]
    assert processing["VisibilityTimeout"] >= 6 * timeout
    dead_letter = resources["DeadLetterQueue"]["Properties"]
    assert dead_letter["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dead_letter["MessageRetentionPeriod"] > processing["MessageRetentionPeriod"]
    assert production.resolve(dead_letter["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [sqs_arn("mmms-email-processing-queue")],
    }


def test_the_consumer_reads_the_processing_queue_in_batches_of_10(production: Packaged) -> None:
    consumer = production.resources["ConsumeProcessingQueue"]["Properties"]
    assert consumer["Handler"] == "app.consume_processing_queue"
    events = list(consumer["Events"].values())
    assert [e["Type"] for e in events] == ["SQS"]
    source = events[0]["Properties"]
    assert source["BatchSize"] == 10
    # It refers to the queue resource, so the mapping is created after the queue exists.
    assert "ProcessingQueue" in json.dumps(source["Queue"])
    assert production.resolve(source["Queue"]) == sqs_arn("mmms-email-processing-queue")
    # Partial batches: the handler deletes what succeeded and raises for the rest, which is
    # right with or without ReportBatchItemFailures; the package does not set it.
    assert "FunctionResponseTypes" not in source

    schedule = production.resources["SweepDeliveries"]["Properties"]["Events"]
    assert [e["Type"] for e in schedule.values()] == ["Schedule"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_uses_the_created_queues_and_named_secrets(
    production: Packaged, function: str
) -> None:
    variables = production.resources[function]["Properties"]["Environment"]["Variables"]
    assert variables["MAIL_QUEUE_URL"] == {"Ref": "ProcessingQueue"}
    assert variables["MAIL_RESULT_QUEUE_URL"] == {"Ref": "ResultQueue"}
    assert variables["MAIL_QUEUE_MAX_RECEIVES"] == {"Ref": "MaxReceiveCount"}
    assert variables["SECRET_NAME"] == {"Ref": "DatabaseSecretName"}
    assert variables["ADMIN_SECRET_NAME"] == {"Ref": "AdminSecretName"}
    assert variables["PROVIDER_SECRET_NAME"] == {
        "Fn::If": ["HasProviderSecret", {"Ref": "ProviderSecretName"}, {"Ref": "AWS::NoValue"}]
    }
    assert variables["MMMS_STAGE"] == "production"
    assert production.defaults()["DatabaseSecretName"] == "postgresql-01-secret"
    assert production.defaults()["AdminSecretName"] == "mmms-production-admin-token"
    # Production keeps no provider credentials in Secrets Manager: no variable at all (an
    # empty one would make the code look up a secret named "").
    assert production.defaults()["ProviderSecretName"] == ""
    assert not production.condition("HasProviderSecret")
    assert "PROVIDER_SECRET_NAME" not in production.variables(function)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_has_a_log_group_with_retention(production: Packaged, function: str) -> None:
    # The policies grant no logs:CreateLogGroup: the template creates each function's group.
    groups = [
        r["Properties"]
        for r in production.resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
        and r["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    ]
    assert len(groups) == 1
    assert groups[0]["RetentionInDays"] == 30


READ_SENDING_RATE = {"ses:GetAccount", "ses:GetSendQuota"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_iam_allows_what_the_code_does_on_the_named_resources_only(
    production: Packaged, function: str
) -> None:
    statements = production.statements(function)
    processing = sqs_arn("mmms-email-processing-queue")
    result = sqs_arn("mmms-email-result-queue")
    dead_letter = sqs_arn("mmms-email-processing-dlq")

    for statement in statements:
        actions = as_list(statement["Action"])
        assert all(a != "*" and not a.endswith(":*") for a in actions)
        # Reading the account's sending rate has no resource-level permission in IAM: "*" is
        # the only resource AWS accepts, for these two read-only actions and nothing else.
        if set(actions) != READ_SENDING_RATE:
            assert all(r != "*" for r in as_list(statement["Resource"]))
        assert "NotAction" not in statement
        assert "NotResource" not in statement

    ses_identity = f"arn:aws:ses:{ACCOUNT}:identity/example.com"
    assert allows(statements, "ses:SendEmail", ses_identity)
    assert allows(statements, "ses:SendRawEmail", ses_identity)
    assert not allows(statements, "ses:SendEmail", "arn:aws:ses:us-east-1:999999999999:identity/x")
    assert not allows(statements, "ses:DeleteEmailIdentity", ses_identity)
    assert allows(statements, "ses:GetAccount", "*")
    assert not allows(statements, "ses:PutAccountSendingAttributes", "*")

    for action in SQS_USED:
        assert allows(statements, action, processing), action
    assert allows(statements, "sqs:SendMessage", result)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"):
        assert not allows(statements, action, result), action
    for action in (*SQS_USED, "sqs:PurgeQueue", "sqs:DeleteQueue"):
        assert not allows(statements, action, dead_letter), action
        assert not allows(statements, action, sqs_arn("some-other-queue")), action
    assert not allows(statements, "sqs:DeleteQueue", processing)

    for name in ("postgresql-01-secret", "mmms-production-admin-token"):
        assert allows(statements, "secretsmanager:GetSecretValue", secret_arn(name))
        assert not allows(statements, "secretsmanager:PutSecretValue", secret_arn(name))
    for other in (
        "postgresql-01-secret-other",
        "mmms-dev-postgresql",
        "someone-elses",
        PROVIDER_SECRET,
        "",
    ):
        assert not allows(statements, "secretsmanager:GetSecretValue", secret_arn(other)), other

    log_stream = f"arn:aws:logs:{ACCOUNT}:log-group:/aws/lambda/fn:log-stream:x"
    assert allows(statements, "logs:PutLogEvents", log_stream)
    assert not allows(statements, "logs:DeleteLogGroup", log_stream)
    assert not allows(statements, "s3:GetObject", "arn:aws:s3:::any-bucket/key")
    assert not allows(statements, "iam:PassRole", "arn:aws:iam::123456789012:role/admin")


def test_the_dev_stage_gets_its_own_queues_and_secrets(
    package: Callable[[str], Packaged], chalice_config: dict[str, Any]
) -> None:
    dev = package("dev")
    env = stage_env(chalice_config, "dev")
    assert dev.defaults() == {
        "ProcessingQueueName": "mmms-dev-processing-queue",
        "DeadLetterQueueName": "mmms-dev-processing-dlq",
        "ResultQueueName": "mmms-dev-result-queue",
        "MaxReceiveCount": env["MAIL_QUEUE_MAX_RECEIVES"],
        "DatabaseSecretName": env["SECRET_NAME"],
        "AdminSecretName": env["ADMIN_SECRET_NAME"],
        "ProviderSecretName": "",
        "EventsQueueName": "mmms-dev-events-queue",
        "EventsDeadLetterQueueName": "mmms-dev-events-dlq",
        "ConfigurationSetName": "mmms-dev",
        "ConsumerMaxConcurrency": "2",
        "SubnetIds": "",
        "SecurityGroupIds": "",
        "AlarmEmail": "",
        "BounceRateAlarmThreshold": "0.04",
        "ComplaintRateAlarmThreshold": "0.0008",
        "CampaignBucketName": env["CAMPAIGN_BUCKET"],
        "CampaignUploadsQueueName": "mmms-dev-campaign-uploads-queue",
        "CampaignUploadsDeadLetterQueueName": "mmms-dev-campaign-uploads-dlq",
        "CampaignUploadDays": "7",
    }
    assert "PROVIDER_SECRET_NAME" not in dev.variables("APIHandler")
    source = next(iter(dev.resources["ConsumeProcessingQueue"]["Properties"]["Events"].values()))
    assert dev.resolve(source["Properties"]["Queue"]) == sqs_arn("mmms-dev-processing-queue")
    statements = dev.statements("ConsumeProcessingQueue")
    assert allows(statements, "secretsmanager:GetSecretValue", secret_arn("mmms-dev-postgresql"))
    assert not allows(
        statements, "secretsmanager:GetSecretValue", secret_arn("postgresql-01-secret")
    )


def secret_statement(statements: list[dict[str, Any]]) -> dict[str, Any]:
    (statement,) = [s for s in statements if s.get("Sid") == "Secrets"]
    return statement


def test_a_stage_with_a_provider_secret_differs_only_in_that_parameter(
    production: Packaged, with_provider_secret: Packaged
) -> None:
    # The variable and the grant hang on the Parameter, not on what Chalice wrote: the two
    # templates are the same but for its default and Chalice's stage tag on the functions
    # (and cfn-lint finds nothing in either).
    def normalised(packaged: Packaged) -> Any:
        text = json.dumps(packaged.template).replace(
            f"stage={PROVIDER_STAGE}:", "stage=production:"
        )
        template = json.loads(text)
        template["Parameters"]["ProviderSecretName"]["Default"] = "<name>"
        return template

    parameters = with_provider_secret.template["Parameters"]
    assert parameters["ProviderSecretName"]["Default"] == PROVIDER_SECRET
    assert normalised(with_provider_secret) == normalised(production)
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), str(with_provider_secret.out / "sam.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_provider_secret_is_passed_and_readable_and_nothing_more(
    production: Packaged, with_provider_secret: Packaged, function: str
) -> None:
    assert with_provider_secret.condition("HasProviderSecret")
    variables = with_provider_secret.variables(function)
    assert variables["PROVIDER_SECRET_NAME"] == PROVIDER_SECRET
    assert {**variables, "PROVIDER_SECRET_NAME": None} == {
        **production.variables(function),
        "PROVIDER_SECRET_NAME": None,
    }

    statements = with_provider_secret.statements(function)
    arn = secret_arn(PROVIDER_SECRET)
    assert allows(statements, "secretsmanager:GetSecretValue", arn)
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret"):
        assert not allows(statements, action, arn), action
    for other in (
        f"{PROVIDER_SECRET}-other",
        "mmms/production/other",
        "mmms/production",
        "someone-elses",
    ):
        assert not allows(statements, "secretsmanager:GetSecretValue", secret_arn(other)), other
    for name in ("postgresql-01-secret", "mmms-production-admin-token"):
        assert allows(statements, "secretsmanager:GetSecretValue", secret_arn(name))

    # One more Resource in the Secrets statement, and no other change to the policy.
    pattern = f"arn:aws:secretsmanager:{ACCOUNT}:secret:{PROVIDER_SECRET}-??????"
    unset = production.statements(function)
    assert secret_statement(statements)["Resource"] == [
        *secret_statement(unset)["Resource"],
        pattern,
    ]
    assert [s for s in statements if s.get("Sid") != "Secrets"] == [
        s for s in unset if s.get("Sid") != "Secrets"
    ]


@pytest.mark.parametrize(("override", "granted"), [("mmms/other-providers", True), ("", False)])
def test_the_provider_secret_follows_a_parameter_override(
    production: Packaged, with_provider_secret: Packaged, override: str, granted: bool
) -> None:
    """`aws cloudformation deploy --parameter-overrides ProviderSecretName=...`."""
    for packaged in (production, with_provider_secret):
        deployed = packaged.with_parameters(ProviderSecretName=override)
        for function in FUNCTIONS:
            variables = deployed.variables(function)
            statements = deployed.statements(function)
            assert variables.get("PROVIDER_SECRET_NAME") == (override if granted else None)
            assert len(secret_statement(statements)["Resource"]) == (3 if granted else 2)
            assert (
                allows(statements, "secretsmanager:GetSecretValue", secret_arn(override)) is granted
            )
            assert not allows(
                statements, "secretsmanager:GetSecretValue", secret_arn(PROVIDER_SECRET)
            )


def test_ses_events_flow_from_the_configuration_set_to_the_events_consumer(
    production: Packaged,
) -> None:
    resources = production.resources
    destination = resources["ConfigurationSetEventDestination"]["Properties"]
    assert destination["ConfigurationSetName"] == {"Ref": "ConfigurationSet"}
    event_destination = destination["EventDestination"]
    assert event_destination["SnsDestination"] == {"TopicARN": {"Ref": "EventsTopic"}}
    assert {"delivery", "bounce", "complaint", "reject", "deliveryDelay"} <= set(
        event_destination["MatchingEventTypes"]
    )
    subscription = resources["EventsSubscription"]["Properties"]
    assert subscription["Protocol"] == "sqs"
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    (statement,) = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "EventsTopic"}}}
    events_queue = resources["EventsQueue"]["Properties"]
    assert events_queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]
    }
    consumer = resources["ConsumeEventsQueue"]["Properties"]
    assert consumer["Handler"] == "app.consume_events_queue"
    (source,) = consumer["Events"].values()
    assert production.resolve(source["Properties"]["Queue"]) == sqs_arn("mmms-email-events-queue")
    for function in ("APIHandler", "ConsumeProcessingQueue", "ConsumeEventsQueue"):
        variables = production.variables(function)
        assert variables["SES_CONFIGURATION_SET"] == "<ConfigurationSet>"
        assert variables["MAIL_EVENTS_QUEUE_URL"].endswith("/mmms-email-events-queue")
    statements = production.statements("ConsumeEventsQueue")
    assert allows(statements, "sqs:ReceiveMessage", sqs_arn("mmms-email-events-queue"))
    assert allows(statements, "sqs:SendMessage", sqs_arn("mmms-email-result-queue"))
    assert not allows(statements, "sqs:ReceiveMessage", sqs_arn("mmms-email-processing-queue"))
    assert not allows(
        statements, "ses:SendEmail", "arn:aws:ses:eu-central-1:123456789012:identity/x"
    )
    # Test keys' simulated events go on the events queue from the API and the consumer.
    for function in ("APIHandler", "ConsumeProcessingQueue"):
        assert allows(
            production.statements(function), "sqs:SendMessage", sqs_arn("mmms-email-events-queue")
        )


@pytest.mark.parametrize("function", ["ConsumeProcessingQueue", "ConsumeEventsQueue"])
def test_each_consumer_runs_at_most_the_configured_instances(
    production: Packaged, chalice_config: dict[str, Any], function: str
) -> None:
    (source,) = production.resources[function]["Properties"]["Events"].values()
    scaling = source["Properties"]["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": {"Ref": "ConsumerMaxConcurrency"}}
    parameter = production.template["Parameters"]["ConsumerMaxConcurrency"]
    env = stage_env(chalice_config, "production")
    assert parameter["Default"] == int(env["MAIL_CONSUMER_MAX_CONCURRENCY"]) == 10
    assert parameter["MinValue"] == 2  # SQS's own lower bound
