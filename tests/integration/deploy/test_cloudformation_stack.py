"""`make deploy`, as far as this machine allows: the packaged template (infra/package.sh) with
its code uploaded to S3 (what `aws cloudformation package` does), expanded from SAM with
aws-sam-translator (what CloudFormation's transform does), and created on moto's
CloudFormation over HTTP.

moto cannot create every resource type of the template (:data:`MOTO_LACKS`, checked against
the installed moto so that an upgrade which supports one shows up here). Those resources are
taken out of what moto creates, references to them replaced by placeholders
(:func:`for_moto`), and their properties are checked in the expanded template itself. The
migrations custom resource is answered by its real handler, as the MigrateDatabase function
would answer it (moto would run the function in Docker, which this machine has not). Whatever
queues, dead-letter queues, buckets and topics the template holds must be created.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import moto as moto_package
import psycopg
import pytest
from moto.cloudformation import cloudformation_backends
from moto.cloudformation.parsing import NULL_MODELS, get_model_map
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import (
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)

from chalicelib.migrate import migration_files
from chalicelib.migrate_resource import handler
from infra.operations import (
    ALARM_TOPIC,
    API_FUNCTION,
    MIGRATE_FUNCTION,
    MIGRATIONS,
    SES_REVIEW_BOUNCE_RATE,
    SES_REVIEW_COMPLAINT_RATE,
    WARM_UP_EVENT,
    dead_letter_queues,
)
from tests.integration.deploy.conftest import PSEUDO, Packaged
from tests.support.database import isolated_schema
from tests.support.moto_server import ACCOUNT_ID, MotoServer

ARTIFACTS = "mmms-deploy-artifacts"
STACK = "mmms-production"
ALARM_EMAIL = "ops@example.org"
PARAMETERS = {"AlarmEmail": ALARM_EMAIL}
# moto takes the region of an unsigned request (the custom resource's answer to its ResponseURL)
# from an AWS host name, and there is none in 127.0.0.1: it takes us-east-1. The stack is
# created there, so that the answer reaches it.
STACK_REGION = "us-east-1"
# What moto (5.2.5) cannot create; the test fails when this is no longer exactly so.
MOTO_LACKS = [
    "AWS::ApiGateway::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::Alias",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
]
# moto creates a REST API from its name alone, without its OpenAPI Body (the methods), and
# refuses to deploy an API without methods: the deployment is left out as well.
MOTO_CANNOT_DEPLOY = ["AWS::ApiGateway::Deployment"]
# What a reference to a resource moto lacks becomes, from the resource's properties: an alias's
# ARN the ARN of its function, a configuration set's Ref its name; any other reference becomes
# a placeholder string.
STANDS_IN: dict[str, Callable[[dict[str, Any]], Any]] = {
    "AWS::Lambda::Alias": lambda alias: {"Fn::GetAtt": [alias["FunctionName"]["Ref"], "Arn"]},
    "AWS::SES::ConfigurationSet": lambda configuration_set: configuration_set["Name"],
}
MOTO_PLACEHOLDER = "moto-lacks:"


def code_key(packaged: Packaged, code_uri: str) -> str:
    return f"mmms/{hashlib.sha256((packaged.out / code_uri).read_bytes()).hexdigest()}.zip"


@pytest.fixture(scope="module")
def expanded(production: Packaged) -> dict[str, Any]:
    """The packaged template with its code in S3, expanded as CloudFormation's transform does."""
    template = copy.deepcopy(production.template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            key = code_key(production, resource["Properties"]["CodeUri"])
            resource["Properties"]["CodeUri"] = f"s3://{ARTIFACTS}/{key}"
    # samtranslator.translator.transform.transform, with the region given (not the machine's).
    parameters = {**PARAMETERS, "AWS::AccountId": ACCOUNT_ID}
    to_py27_compatible_template(template, parameters)
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=STACK_REGION))
    # The template names no AWS managed policy that SAM would have to look up.
    result = translator.translate(template, parameters, get_managed_policy_map=dict)
    expanded: dict[str, Any] = undo_mark_unicode_str_in_template(result)
    return expanded


def lacking(template: dict[str, Any]) -> list[str]:
    """The resource types of ``template`` the installed moto cannot create."""
    supported = set(get_model_map()) | set(NULL_MODELS)
    types = {resource["Type"] for resource in template["Resources"].values()}
    return sorted(t for t in types if t not in supported and not t.startswith("Custom::"))


def for_moto(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``template`` without the resources moto lacks (returned apart), references to them
    replaced (:class:`_StandIns`), and left out of every ``DependsOn``."""
    result = copy.deepcopy(template)
    removed = {
        name: result["Resources"].pop(name)
        for name, resource in template["Resources"].items()
        if resource["Type"] in MOTO_LACKS + MOTO_CANNOT_DEPLOY
    }
    for resource in result["Resources"].values():
        depends = resource.get("DependsOn")
        if depends is not None:
            depends = [depends] if isinstance(depends, str) else depends
            resource["DependsOn"] = [name for name in depends if name not in removed]
    stand_ins = _StandIns(removed)
    result["Resources"] = stand_ins.replace(result["Resources"])
    result["Outputs"] = stand_ins.replace(result.get("Outputs", {}))
    return result, removed


@dataclass(frozen=True)
class _StandIns:
    """``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` references to removed resources replaced: by
    :data:`STANDS_IN` of the resource's properties, else by a ``moto-lacks:`` string."""

    removed: dict[str, Any]

    def replace(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.replace(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Ref" and argument in self.removed:
                return self._stand_in(argument)
            if function == "Fn::GetAtt" and argument[0] in self.removed:
                return self._stand_in(*argument)
            if function == "Fn::Sub":
                return self._sub(argument)
        return {key: self.replace(value) for key, value in node.items()}

    def _stand_in(self, name: str, attribute: str | None = None) -> Any:
        kind = self.removed[name]["Type"]
        if attribute is None and kind in STANDS_IN:
            return self.replace(STANDS_IN[kind](self.removed[name]["Properties"]))
        return MOTO_PLACEHOLDER + name + (f".{attribute}" if attribute else "")

    def _sub(self, argument: str | list[Any]) -> dict[str, Any]:
        """``${Name}`` and ``${Name.Attribute}`` of a removed resource become variables."""
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = self.replace(variables)
        for match in re.finditer(r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}", text):
            name, attribute = match.groups()
            if name in self.removed and match.group(0)[2:-1] not in variables:
                variables[match.group(0)[2:-1]] = self._stand_in(name, attribute)
        return {"Fn::Sub": [text, variables] if variables else text}


@dataclass
class Stack:
    clients: dict[str, Any]
    status_before_migrations: str
    status: str
    resources: dict[str, dict[str, Any]]  # logical id -> StackResourceSummary
    outputs: dict[str, str]
    applied: list[str]

    def physical(self, name: str) -> str:
        return str(self.resources[name]["PhysicalResourceId"])


@pytest.fixture
def stack(
    production: Packaged,
    expanded: dict[str, Any],
    moto: MotoServer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Stack:
    """The stack created on moto, its migrations applied by the custom resource's handler."""
    clients = {
        name: boto3.client(name, endpoint_url=moto.endpoint_url, region_name=STACK_REGION)
        for name in ("cloudformation", "s3", "sqs", "sns", "lambda", "events", "apigateway")
    }
    s3 = clients["s3"]
    s3.create_bucket(Bucket=ARTIFACTS)
    for resource in production.resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            uri = resource["Properties"]["CodeUri"]
            code = (production.out / uri).read_bytes()
            s3.put_object(Bucket=ARTIFACTS, Key=code_key(production, uri), Body=code)
    cloudformation = clients["cloudformation"]
    template, _ = for_moto(expanded)
    stack_id = cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )["StackId"]
    # moto creates the resources within CreateStack, then waits, as CloudFormation does, for
    # the custom resource's answer (it tries to run MigrateDatabase in Docker and cannot).
    before = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    custom = cloudformation_backends[ACCOUNT_ID][STACK_REGION].get_stack(stack_id)
    request_id = custom.get_custom_resource(MIGRATIONS).request_id
    created = cloudformation.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
    migrate = clients["lambda"].get_function_configuration(
        FunctionName=next(
            r["PhysicalResourceId"] for r in created if r["LogicalResourceId"] == MIGRATE_FUNCTION
        )
    )
    with isolated_schema(postgres_url) as url:
        # The function's environment as the stack made it (queue URLs, secret names), with
        # DATABASE_URL, which settings read before the secret, standing in for the RDS secret.
        for name, value in migrate["Environment"]["Variables"].items():
            monkeypatch.setenv(name, str(value))
        monkeypatch.setenv("DATABASE_URL", url)
        answer = handler(
            {
                "RequestType": "Create",
                "ServiceToken": migrate["FunctionArn"],
                "ResponseURL": f"{moto.endpoint_url}/cloudformation_{STACK_REGION}/cfnresponse"
                f"?stack={stack_id}",
                "StackId": stack_id,
                "RequestId": request_id,
                "LogicalResourceId": MIGRATIONS,
                "ResourceType": expanded["Resources"][MIGRATIONS]["Type"],
                "ResourceProperties": expanded["Resources"][MIGRATIONS]["Properties"],
            },
            None,
        )
        assert answer["Status"] == "SUCCESS", answer
        with psycopg.connect(url) as conn:
            applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    description = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    summaries = cloudformation.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
    return Stack(
        clients=clients,
        status_before_migrations=before,
        status=description["StackStatus"],
        resources={s["LogicalResourceId"]: s for s in summaries},
        outputs={o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])},
        applied=sorted(applied),
    )


def of_type(template: dict[str, Any], kind: str) -> list[str]:
    return sorted(n for n, r in template["Resources"].items() if r["Type"] == kind)


def test_moto_lacks_exactly_the_listed_resource_types(expanded: dict[str, Any]) -> None:
    found = lacking(expanded)
    print(  # noqa: T201 - said on every run (-s, -rA): what this test could not create
        f"moto {moto_package.__version__} cannot create: {', '.join(found)}"
    )
    assert found == MOTO_LACKS, "moto changed: update MOTO_LACKS and check the new types on moto"


def test_the_packaged_stack_is_created_on_moto_with_everything_it_holds(
    stack: Stack, expanded: dict[str, Any], production: Packaged
) -> None:
    template, _ = for_moto(expanded)
    assert stack.status_before_migrations == "CREATE_IN_PROGRESS"
    assert stack.status == "CREATE_COMPLETE"
    assert stack.applied == [version for version, _ in migration_files()]
    assert set(stack.resources) == set(template["Resources"])
    assert {s["ResourceStatus"] for s in stack.resources.values()} == {"CREATE_COMPLETE"}
    deployed = production.with_parameters(**PARAMETERS)

    # Every queue, named and configured as the template says, dead letters where it says.
    sqs = stack.clients["sqs"]
    queues = of_type(expanded, "AWS::SQS::Queue")
    assert {"ProcessingQueue", "DeadLetterQueue", "EventsQueue", "EventsDeadLetterQueue"} <= set(
        queues
    )
    for name in queues:
        properties = deployed.resolve(expanded["Resources"][name]["Properties"])
        url = stack.physical(name)
        assert url.rsplit("/", 1)[1] == properties["QueueName"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in properties:
                assert attributes[key] == str(properties[key]), (name, key)
        if "RedrivePolicy" in properties:
            target = expanded["Resources"][name]["Properties"]["RedrivePolicy"]
            dead_letter = target["deadLetterTargetArn"]["Fn::GetAtt"][0]
            dead_letter_arn = sqs.get_queue_attributes(
                QueueUrl=stack.physical(dead_letter), AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            assert json.loads(attributes["RedrivePolicy"]) == {
                "deadLetterTargetArn": dead_letter_arn,
                "maxReceiveCount": int(properties["RedrivePolicy"]["maxReceiveCount"]),
            }
    assert set(dead_letter_queues(expanded)) >= {"DeadLetterQueue", "EventsDeadLetterQueue"}
    assert stack.outputs["ProcessingQueueUrl"] == stack.physical("ProcessingQueue")

    # Every bucket (section 13's uploads bucket once the campaigns have landed).
    buckets = {b["Name"] for b in stack.clients["s3"].list_buckets()["Buckets"]}
    for name in of_type(expanded, "AWS::S3::Bucket"):
        assert stack.physical(name) in buckets

    # Every topic: the SES events and the alarms.
    topics = {t["TopicArn"] for t in stack.clients["sns"].list_topics()["Topics"]}
    assert {stack.physical(name) for name in of_type(expanded, "AWS::SNS::Topic")} == topics
    assert stack.outputs["AlarmTopicArn"] == stack.physical(ALARM_TOPIC)
    assert stack.physical(ALARM_TOPIC).endswith(f":{STACK}-alarms")

    # Every function, on python3.12, its queue URLs the ones the stack created; the consumers
    # read their queues; the warm-up schedule sends the API its event.
    lambda_ = stack.clients["lambda"]
    for name in of_type(expanded, "AWS::Lambda::Function"):
        configuration = lambda_.get_function_configuration(FunctionName=stack.physical(name))
        assert configuration["Runtime"] == "python3.12"
        variables = configuration["Environment"]["Variables"]
        for variable, queue in (
            ("MAIL_QUEUE_URL", "ProcessingQueue"),
            ("MAIL_RESULT_QUEUE_URL", "ResultQueue"),
            ("MAIL_EVENTS_QUEUE_URL", "EventsQueue"),
        ):
            assert variables[variable] == stack.physical(queue), (name, variable)
    mappings = {
        (m["FunctionArn"].rsplit(":", 1)[1], m["EventSourceArn"].rsplit(":", 1)[1])
        for m in lambda_.list_event_source_mappings()["EventSourceMappings"]
    }
    sources = [
        expanded["Resources"][name]["Properties"]
        for name in of_type(expanded, "AWS::Lambda::EventSourceMapping")
    ]
    assert mappings == {
        (
            stack.physical(source["FunctionName"]["Ref"]),
            str(deployed.resolve(source["EventSourceArn"])).rsplit(":", 1)[1],
        )
        for source in sources
    }
    assert (stack.physical("ConsumeProcessingQueue"), deployed.queue_name("ProcessingQueue")) in (
        mappings
    )
    events = stack.clients["events"]
    warm_up = events.describe_rule(Name=stack.physical(f"{API_FUNCTION}WarmUp"))
    assert warm_up["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = events.list_targets_by_rule(Rule=warm_up["Name"])["Targets"]
    assert json.loads(target["Input"]) == WARM_UP_EVENT
    apigateway = stack.clients["apigateway"]
    api = apigateway.get_rest_api(restApiId=stack.physical("RestAPI"))
    assert api["name"] == STACK
    # Why MOTO_CANNOT_DEPLOY: moto left the Body out (when it stops, deploy on moto again).
    paths = expanded["Resources"]["RestAPI"]["Properties"]["Body"]["paths"]
    assert len(paths) > 10
    resources = apigateway.get_resources(restApiId=api["id"])["items"]
    assert [(r["path"], r.get("resourceMethods")) for r in resources] == [("/", None)]


@dataclass(frozen=True)
class Removed:
    """What :func:`for_moto` took out, read with this deploy's parameters (references to
    other resources read ``<Name>`` or ``<Name.Attribute>``)."""

    template: dict[str, Any]
    resources: dict[str, Any]
    deployed: Packaged

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: self.deployed.resolve(resource["Properties"])
            for name, resource in self.resources.items()
            if resource["Type"] == kind
        }


@pytest.fixture
def removed(expanded: dict[str, Any], production: Packaged) -> Removed:
    _, resources = for_moto(expanded)
    deployed = Packaged(production.out, expanded).with_parameters(**PARAMETERS)
    return Removed(expanded, resources, deployed)


def test_the_alarms_watch_every_dead_letter_queue_consumer_and_ses_rate(removed: Removed) -> None:
    """Every dead-letter queue not empty, every consumer's errors for 15 minutes, SES's bounce
    and complaint rates before its review levels; all to the alarm topic, both ways."""
    alarms = removed.of_type("AWS::CloudWatch::Alarm")
    assert {a["ComparisonOperator"] for a in alarms.values()} == {"GreaterThanThreshold"}
    assert all(a["AlarmActions"] == a["OKActions"] == ["<AlarmTopic>"] for a in alarms.values())
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms.values():
        by_metric.setdefault(alarm["MetricName"], []).append(alarm)

    dead_letters = by_metric.pop("ApproximateNumberOfMessagesVisible")
    assert sorted(a["Dimensions"][0]["Value"] for a in dead_letters) == [
        f"<{queue}.QueueName>" for queue in dead_letter_queues(removed.template)
    ]
    assert {(a["Namespace"], a["Threshold"]) for a in dead_letters} == {("AWS/SQS", 0)}

    # Consumers: what an SQS event source or a schedule runs (the warm-up calls the alias).
    resources = removed.template["Resources"].values()
    consumers = {
        str(removed.deployed.resolve(r["Properties"]["FunctionName"]))
        for r in resources
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    } | {
        f"<{target['Arn']['Fn::GetAtt'][0]}>"
        for r in resources
        if r["Type"] == "AWS::Events::Rule"
        for target in r["Properties"]["Targets"]
        if "Fn::GetAtt" in target["Arn"]
    }
    assert {
        f"<{n}>" for n in ("ConsumeProcessingQueue", "ConsumeEventsQueue", "SweepDeliveries")
    } <= (consumers)
    errors = by_metric.pop("Errors")
    assert sorted(a["Dimensions"][0]["Value"] for a in errors) == sorted(consumers)
    assert {(a["Period"], a["EvaluationPeriods"], a["DatapointsToAlarm"]) for a in errors} == {
        (300, 3, 3)
    }

    (bounce,) = by_metric.pop("Reputation.BounceRate")
    (complaint,) = by_metric.pop("Reputation.ComplaintRate")
    assert float(bounce["Threshold"]) == 0.04 < SES_REVIEW_BOUNCE_RATE
    assert float(complaint["Threshold"]) == 0.0008 < SES_REVIEW_COMPLAINT_RATE
    assert by_metric == {}


def test_the_topics_deliver_to_the_alarm_email_and_the_events_queue(removed: Removed) -> None:
    """The alarm e-mail subscribed (when given); the SES events topic delivers to its queue,
    which lets that topic (only) send; SES may publish to the topic."""
    subscriptions = removed.of_type("AWS::SNS::Subscription")
    assert removed.resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert removed.deployed.condition("HasAlarmEmail")
    events_queue = removed.deployed.queue_name("EventsQueue")
    assert subscriptions == {
        "AlarmEmailSubscription": {
            "Protocol": "email",
            "TopicArn": f"<{ALARM_TOPIC}>",
            "Endpoint": ALARM_EMAIL,
        },
        "EventsSubscription": {
            "Protocol": "sqs",
            "TopicArn": "<EventsTopic>",
            "Endpoint": f"arn:aws:sqs:{PSEUDO['AWS::Region']}:{ACCOUNT_ID}:{events_queue}",
        },
    }
    events_url = removed.deployed.resolve({"Ref": "EventsQueue"})
    queue_policies = removed.of_type("AWS::SQS::QueuePolicy").values()
    (queue_policy,) = [p for p in queue_policies if p["Queues"] == [events_url]]
    (statement,) = queue_policy["PolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Action"]) == (
        {"Service": "sns.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "<EventsTopic>"}}
    (topic_policy,) = removed.of_type("AWS::SNS::TopicPolicy").values()
    (statement,) = topic_policy["PolicyDocument"]["Statement"]
    assert topic_policy["Topics"] == ["<EventsTopic>"]
    assert (statement["Principal"], statement["Action"]) == (
        {"Service": "ses.amazonaws.com"},
        "sns:Publish",
    )


def test_every_bucket_notifies_queues_of_the_stack_that_let_it_send(removed: Removed) -> None:
    """New objects of a bucket (section 13's uploads) go to a queue of the template whose policy
    lets S3 send for that bucket (moto creates buckets without their notifications)."""
    resources = removed.template["Resources"]
    queue_names = {
        removed.deployed.queue_name(name): name
        for name in of_type(removed.template, "AWS::SQS::Queue")
    }
    policies = list(removed.of_type("AWS::SQS::QueuePolicy").values())
    for bucket_name in of_type(removed.template, "AWS::S3::Bucket"):
        bucket = removed.deployed.resolve(resources[bucket_name]["Properties"])
        notifications = bucket.get("NotificationConfiguration", {})
        for notification in notifications.get("QueueConfigurations", []):
            assert notification["Event"].startswith("s3:ObjectCreated:"), notification
            queue = queue_names[notification["Queue"].rsplit(":", 1)[1]]
            url = removed.deployed.resolve({"Ref": queue})
            statements = [
                statement
                for policy in policies
                if url in policy["Queues"]
                for statement in policy["PolicyDocument"]["Statement"]
            ]
            from_s3 = [
                s
                for s in statements
                if s["Principal"] == {"Service": "s3.amazonaws.com"}
                and s["Action"] == "sqs:SendMessage"
            ]
            assert from_s3, (bucket_name, queue)
            if "BucketName" in bucket:
                arn = f"arn:aws:s3:::{bucket['BucketName']}"
                assert all(s["Condition"]["ArnEquals"]["aws:SourceArn"] == arn for s in from_s3)


def test_ses_sends_carry_the_configuration_set_whose_events_reach_the_topic(
    removed: Removed,
) -> None:
    (configuration_set,) = removed.of_type("AWS::SES::ConfigurationSet").values()
    assert configuration_set == {"Name": removed.deployed.defaults()["ConfigurationSetName"]}
    (destination,) = removed.of_type("AWS::SES::ConfigurationSetEventDestination").values()
    assert destination["ConfigurationSetName"] == "<ConfigurationSet>"
    assert destination["EventDestination"]["Enabled"] is True
    assert destination["EventDestination"]["SnsDestination"] == {"TopicARN": "<EventsTopic>"}
    assert {"delivery", "bounce", "complaint"} <= set(
        destination["EventDestination"]["MatchingEventTypes"]
    )


def test_the_api_is_called_through_the_snapstart_alias_on_stage_v1(removed: Removed) -> None:
    """SnapStart on published versions, behind the alias that API Gateway, its permissions
    and the warm-up schedule call; the API's stage v1 of its deployment."""
    resources = removed.template["Resources"]
    ((alias_name, alias),) = removed.of_type("AWS::Lambda::Alias").items()
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == f"<{API_FUNCTION}>"
    version = alias["FunctionVersion"].removeprefix("<").removesuffix(".Version>")
    assert resources[version]["Type"] == "AWS::Lambda::Version"
    assert resources[version]["Properties"]["FunctionName"] == {"Ref": API_FUNCTION}
    assert resources[API_FUNCTION]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}

    via_alias = {"Ref": alias_name}
    permissions = [
        r["Properties"]["FunctionName"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Permission" and name.startswith(API_FUNCTION)
    ]
    assert permissions == [via_alias] * 2  # API Gateway and the warm-up schedule
    warm_up = resources[f"{API_FUNCTION}WarmUp"]["Properties"]
    assert [t["Arn"] for t in warm_up["Targets"]] == [via_alias]
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]
        for path in resources["RestAPI"]["Properties"]["Body"]["paths"].values()
        for operation in path.values()
        if "x-amazon-apigateway-integration" in operation
    ]
    assert len(uris) > 10
    assert {json.dumps(uri["Fn::Sub"][1]) for uri in uris} == {json.dumps({"ApiAlias": via_alias})}

    ((deployment_name, deployment),) = removed.of_type("AWS::ApiGateway::Deployment").items()
    assert deployment["RestApiId"] == "<RestAPI>"
    (stage,) = removed.of_type("AWS::ApiGateway::Stage").values()
    assert stage == {
        "DeploymentId": f"<{deployment_name}>",
        "RestApiId": "<RestAPI>",
        "StageName": "v1",
    }


def test_the_migrations_step_outlasts_its_function_and_logs_from_its_first_run(
    expanded: dict[str, Any],
) -> None:
    """CloudFormation waits for the function's answer longer than the function may run, and
    the function's log group exists before it first runs (a migration failure's traceback)."""
    resources = expanded["Resources"]
    migrations = resources[MIGRATIONS]
    function = resources[MIGRATE_FUNCTION]["Properties"]
    assert migrations["Properties"]["ServiceToken"] == {"Fn::GetAtt": [MIGRATE_FUNCTION, "Arn"]}
    assert function["Timeout"] == 900  # Lambda's longest
    assert function["Timeout"] < migrations["Properties"]["ServiceTimeout"] <= 3600
    (log_group,) = [
        name for name in migrations["DependsOn"] if resources[name]["Type"] == "AWS::Logs::LogGroup"
    ]
    assert resources[log_group]["Properties"]["LogGroupName"] == {
        "Fn::Sub": f"/aws/lambda/${{{MIGRATE_FUNCTION}}}"
    }
