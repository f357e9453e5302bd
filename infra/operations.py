"""What a deployment needs beyond the queues, added to the packaged template (``sam.json``).

``infra/package.sh`` runs ``chalice package`` with ``infra/queues.json`` merged in, then
:func:`add_platform` on the result. It works from what the template holds, so a function,
queue or dead-letter queue added later (a new ``on_sqs_message`` handler, a new queue in
``queues.json``) gets the same treatment without an edit here:

- **VPC** (parameters ``SubnetIds``, ``SecurityGroupIds``): when subnets are given, every
  function runs in them (``VpcConfig``) and its role gets AWS's
  ``AWSLambdaVPCAccessExecutionRole`` (network interfaces); left empty, nothing changes.
- **Migrations as part of the deploy**: a ``MigrateDatabase`` function (same code, settings and
  subnets) and a ``Custom::DatabaseMigrations`` resource that runs it on every create and on
  every update whose migrations changed (its ``Migrations`` property is their digest). Every
  other function depends on it, so new code never starts before its schema; a failed
  migration fails the deploy (chalicelib/migrate_resource.py).
- **Alarms** to an SNS topic (``AlarmTopic``; optional e-mail subscription, ``AlarmEmail``):
  each dead-letter queue not empty, each consumer's errors over three periods in a row, and
  SES's account ``Reputation.BounceRate`` and ``Reputation.ComplaintRate`` above thresholds
  kept below SES's review levels (5 % and 0.1 %).
- **Cold start**: the API function is published (``AutoPublishAlias: live``) with SnapStart,
  API Gateway and its permission point at the alias, and a schedule sends it the warm-up
  event (chalicelib/http/warmup.py) every 5 minutes. SnapStart for Python needs the
  ``python3.12`` runtime or later: a package built with an older Python is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from chalicelib.migrate import migration_files

API_FUNCTION = "APIHandler"
MIGRATE_FUNCTION = "MigrateDatabase"
MIGRATIONS = "DatabaseMigrations"
ALARM_TOPIC = "AlarmTopic"
# Lambda's longest: a migration that builds an index on a large table has all of it.
MIGRATE_TIMEOUT_SECONDS = 900
ALIAS = "live"
WARM_UP_EVENT = {"source": "mmms.warmup"}
WARM_UP_SCHEDULE = "rate(5 minutes)"
SNAPSTART_MIN_RUNTIME = (3, 12)
# SES reviews an account at a 5 % bounce rate and a 0.1 % complaint rate.
SES_REVIEW_BOUNCE_RATE = 0.05
SES_REVIEW_COMPLAINT_RATE = 0.001
VPC_ACCESS_POLICY = (
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
)
NO_VALUE = {"Ref": "AWS::NoValue"}

PARAMETERS: dict[str, dict[str, Any]] = {
    "SubnetIds": {
        "Type": "CommaDelimitedList",
        "Default": "",
        "Description": "Private subnets (subnet-..., comma-separated) every function runs in, to"
        " reach a database in a VPC. Empty: no VPC. In a VPC the functions need a NAT gateway or"
        " VPC endpoints for SQS, SES (email-smtp is not enough: the API endpoint), Secrets"
        " Manager and S3 (README, Deployment).",
    },
    "SecurityGroupIds": {
        "Type": "CommaDelimitedList",
        "Default": "",
        "Description": "Security groups of the functions (with SubnetIds); the database's"
        " group must let them in on its port.",
    },
    "AlarmEmail": {
        "Type": "String",
        "Default": "",
        "AllowedPattern": "^$|^[^@\\s]+@[^@\\s]+$",
        "ConstraintDescription": "an e-mail address, or empty",
        "Description": "Subscribed to the alarm topic (confirm the e-mail AWS sends). Empty:"
        " the topic has no subscriber until you add one.",
    },
    "BounceRateAlarmThreshold": {
        "Type": "Number",
        "Default": 0.04,
        "MinValue": 0.001,
        "MaxValue": 0.049,
        "Description": "Alarm when SES's Reputation.BounceRate exceeds this (SES reviews the"
        " account at 0.05).",
    },
    "ComplaintRateAlarmThreshold": {
        "Type": "Number",
        "Default": 0.0008,
        "MinValue": 0.0001,
        "MaxValue": 0.00099,
        "Description": "Alarm when SES's Reputation.ComplaintRate exceeds this (SES reviews"
        " the account at 0.001).",
    },
}
CONDITIONS: dict[str, Any] = {
    "InVpc": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SubnetIds"}]}, ""]}]},
    "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
}


class PlatformError(Exception):
    """The packaged template cannot take the platform resources as it is."""


def add_platform(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` (Chalice's SAM template, queues merged) with the platform resources."""
    result = copy.deepcopy(template)
    result.setdefault("Parameters", {}).update(copy.deepcopy(PARAMETERS))
    result.setdefault("Conditions", {}).update(copy.deepcopy(CONDITIONS))
    resources: dict[str, Any] = result["Resources"]
    if API_FUNCTION not in resources:
        raise PlatformError(f"the template has no {API_FUNCTION}: is it Chalice's?")
    _add_migrations(resources)
    for name in functions(result):
        _run_in_vpc(resources, name)
    _publish_with_snapstart(resources)
    _add_alarms(result)
    return result


def functions(template: dict[str, Any]) -> list[str]:
    return [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]


def dead_letter_queues(template: dict[str, Any]) -> list[str]:
    """Queues that are some queue's redrive target."""
    found = []
    for resource in template["Resources"].values():
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if resource["Type"] == "AWS::SQS::Queue" and redrive:
            target = redrive["deadLetterTargetArn"]
            found.append(target["Fn::GetAtt"][0])
    return sorted(set(found))


def consumers(template: dict[str, Any]) -> list[str]:
    """Functions run by a queue or a schedule (not the API, not the migrations)."""
    return [
        name
        for name in functions(template)
        if name not in {API_FUNCTION, MIGRATE_FUNCTION}
        and template["Resources"][name]["Properties"].get("Events")
    ]


def migrations_digest() -> str:
    """Changes exactly when a migration file is added or edited."""
    digest = hashlib.sha256()
    for version, sql in migration_files():
        digest.update(version.encode() + b"\0" + sql.encode() + b"\0")
    return digest.hexdigest()


def _role_of(resources: dict[str, Any], function: str) -> dict[str, Any]:
    role = resources[function]["Properties"]["Role"]
    return dict(resources[role["Fn::GetAtt"][0]])


def _add_migrations(resources: dict[str, Any]) -> None:
    api = resources[API_FUNCTION]["Properties"]
    others = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    role = f"{MIGRATE_FUNCTION}Role"
    resources[role] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": f"{role}Policy",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "Logs",
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": {
                                    "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:"
                                    "${AWS::AccountId}:log-group:/aws/lambda/*:*"
                                },
                            },
                            {
                                "Sid": "DatabaseSecret",
                                "Effect": "Allow",
                                "Action": ["secretsmanager:GetSecretValue"],
                                "Resource": {
                                    "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:"
                                    "${AWS::Region}:${AWS::AccountId}:secret:"
                                    "${DatabaseSecretName}-??????"
                                },
                            },
                        ],
                    },
                }
            ],
        },
    }
    resources[MIGRATE_FUNCTION] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Runtime": api["Runtime"],
            "Handler": "chalicelib.migrate_resource.handler",
            "CodeUri": api["CodeUri"],
            "Tags": api.get("Tags", {}),
            "Timeout": MIGRATE_TIMEOUT_SECONDS,
            "MemorySize": 512,
            "Architectures": api.get("Architectures", ["x86_64"]),
            "Environment": copy.deepcopy(api["Environment"]),
            "Role": {"Fn::GetAtt": [role, "Arn"]},
        },
    }
    log_group = next(
        (
            r
            for r in resources.values()
            if r["Type"] == "AWS::Logs::LogGroup"
            and r["Properties"].get("LogGroupName")
            == {"Fn::Sub": f"/aws/lambda/${{{API_FUNCTION}}}"}
        ),
        None,
    )
    resources[f"{MIGRATE_FUNCTION}LogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{MIGRATE_FUNCTION}}}"},
            "RetentionInDays": (log_group or {}).get("Properties", {}).get("RetentionInDays", 30),
        },
    }
    resources[MIGRATIONS] = {
        "Type": "Custom::DatabaseMigrations",
        # The function's first run logs there (a failure's traceback): its role may not create
        # the group, and a group Lambda made first would fail the LogGroup resource.
        "DependsOn": [f"{MIGRATE_FUNCTION}LogGroup"],
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": [MIGRATE_FUNCTION, "Arn"]},
            # CloudFormation hears the function's answer, or gives up soon after it died.
            "ServiceTimeout": MIGRATE_TIMEOUT_SECONDS + 60,
            "Migrations": migrations_digest(),
        },
    }
    for name in others:
        depends = resources[name].get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        resources[name]["DependsOn"] = [*depends, MIGRATIONS]


def _run_in_vpc(resources: dict[str, Any], function: str) -> None:
    resources[function]["Properties"]["VpcConfig"] = {
        "Fn::If": [
            "InVpc",
            {
                "SubnetIds": {"Ref": "SubnetIds"},
                "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
            },
            NO_VALUE,
        ]
    }
    role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    resources[role]["Properties"]["ManagedPolicyArns"] = {
        "Fn::If": ["InVpc", [{"Fn::Sub": VPC_ACCESS_POLICY}], NO_VALUE]
    }


def _runtime_version(runtime: str) -> tuple[int, int]:
    major, _, minor = runtime.removeprefix("python").partition(".")
    return int(major), int(minor)


def _publish_with_snapstart(resources: dict[str, Any]) -> None:
    api = resources[API_FUNCTION]["Properties"]
    if _runtime_version(api["Runtime"]) < SNAPSTART_MIN_RUNTIME:
        raise PlatformError(
            f"{api['Runtime']}: SnapStart for Python needs python3.12 or later; package with"
            " LAMBDA_PYTHON=python3.12 (make package does)"
        )
    api["AutoPublishAlias"] = ALIAS
    api["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    api.setdefault("Events", {})["WarmUp"] = {
        "Type": "Schedule",
        "Properties": {
            "Schedule": WARM_UP_SCHEDULE,
            "Input": json.dumps(WARM_UP_EVENT),
            "Description": "Keeps an API instance warm; answered without work",
        },
    }
    # API Gateway invokes the published alias (SnapStart applies to versions only). SAM
    # resolves "Ref: APIHandler.Alias" to the alias it creates (its ARN).
    alias = {"Ref": f"{API_FUNCTION}.Alias"}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Api":
            # Named after the stack: two stages' APIs are told apart in the console.
            resources[name]["Properties"]["Name"] = {"Ref": "AWS::StackName"}
            resources[name]["Properties"]["DefinitionBody"] = _via_alias(
                resource["Properties"]["DefinitionBody"], alias
            )
        elif resource["Type"] == "AWS::Lambda::Permission" and resource["Properties"].get(
            "FunctionName"
        ) == {"Ref": API_FUNCTION}:
            resource["Properties"]["FunctionName"] = alias


def _via_alias(node: Any, alias: dict[str, str]) -> Any:
    """Every ``Fn::Sub`` naming ``${APIHandler.Arn}`` names the alias instead."""
    function_arn = f"${{{API_FUNCTION}.Arn}}"
    if isinstance(node, dict):
        sub = node.get("Fn::Sub")
        if len(node) == 1 and isinstance(sub, str) and function_arn in sub:
            return {"Fn::Sub": [sub.replace(function_arn, "${ApiAlias}"), {"ApiAlias": alias}]}
        return {key: _via_alias(value, alias) for key, value in node.items()}
    if isinstance(node, list):
        return [_via_alias(item, alias) for item in node]
    return node


def _alarm(description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            **properties,
        },
    }


def _add_alarms(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    resources[ALARM_TOPIC] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": {"Fn::Sub": "${AWS::StackName}-alarms"}},
    }
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {
            "Protocol": "email",
            "TopicArn": {"Ref": ALARM_TOPIC},
            "Endpoint": {"Ref": "AlarmEmail"},
        },
    }
    for queue in dead_letter_queues(template):
        resources[f"{queue}NotEmptyAlarm"] = _alarm(
            f"Messages in {queue}: they failed every retry (redrive them once the cause is fixed)",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            Statistic="Maximum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=0,
        )
    for function in consumers(template):
        # A consumer raises for a batch's transient failures (they are retried): one error is
        # normal, errors for 15 minutes in a row are not.
        resources[f"{function}ErrorsAlarm"] = _alarm(
            f"{function} failed in each of the last three 5-minute periods",
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Dimensions=[{"Name": "FunctionName", "Value": {"Ref": function}}],
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=3,
            DatapointsToAlarm=3,
            Threshold=0,
        )
    for metric, parameter in (
        ("Reputation.BounceRate", "BounceRateAlarmThreshold"),
        ("Reputation.ComplaintRate", "ComplaintRateAlarmThreshold"),
    ):
        name = metric.split(".")[1].removesuffix("Rate")
        resources[f"Ses{name}RateAlarm"] = _alarm(
            f"SES {metric} is above {parameter}, on its way to SES's review level",
            Namespace="AWS/SES",
            MetricName=metric,
            Statistic="Maximum",
            Period=900,
            EvaluationPeriods=1,
            Threshold={"Ref": parameter},
        )
    template.setdefault("Outputs", {})["AlarmTopicArn"] = {
        "Description": "Alarms are published here",
        "Value": {"Ref": ALARM_TOPIC},
    }
