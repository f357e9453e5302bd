"""MMMS queue infrastructure: ``infra/queues.json`` with one stage's defaults.

``infra/queues.json`` is a CloudFormation fragment for ``chalice package --merge-template``: the
processing queue, its dead-letter queue and the result queue, plus overrides of Chalice's own
resources (the functions' queue URLs and secret names, the SQS event source's queue, and
least-privilege IAM policies scoped to the created queues and the named secrets). Its Parameter
defaults are the production stage's; this module writes a copy whose defaults come from a
stage's ``.chalice/config.json`` environment, so one config file names every queue and secret.

The provider secret (``PROVIDER_SECRET_NAME``) is optional: ``ProviderSecretName`` defaults to
the empty string when the stage does not set it, and the ``HasProviderSecret`` condition then
leaves both the functions' variable and its ``GetSecretValue`` grant out of the template.

    python -m infra.stack merge-template --stage dev --output build/merge-dev.json
    python -m infra.stack queues-template --stage dev --output build/queues-dev.json
    python -m infra.stack finalize build/package/sam.json   # + infra/operations.py
    python -m infra.stack check build/package/sam.json

``queues-template`` is the queues alone (no functions): a stack for ``chalice deploy`` setups
and for tests (:func:`create_queue_stack` deploys it, e.g. on moto's CloudFormation).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from infra.operations import PlatformError, add_platform

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "queues.json"
# Campaigns (SPEC 13) in a fragment of their own, merged in by :func:`with_campaigns`.
CAMPAIGNS_TEMPLATE = ROOT / "infra" / "campaigns.json"
CAMPAIGN_FUNCTIONS = ("ConsumeUploadsQueue", "TickCampaigns")
UPLOADS_CONSUMED_QUEUE = {"Fn::Sub": "${CampaignUploadsQueue.Arn}"}
CAMPAIGN_FILES = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${CampaignBucketName}/uploads/*"}
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"

QUEUE_PARAMETERS = (
    "ProcessingQueueName",
    "DeadLetterQueueName",
    "ResultQueueName",
    "MaxReceiveCount",
    "EventsQueueName",
    "EventsDeadLetterQueueName",
)
QUEUE_RESOURCES = (
    "DeadLetterQueue",
    "ProcessingQueue",
    "ResultQueue",
    "EventsDeadLetterQueue",
    "EventsQueue",
)
# Chalice writes the event source's queue as {"Fn::Sub": "arn:...:<name>"}; the merge is a deep
# merge of objects, so the override must use the same key to replace it (not add Fn::GetAtt).
CONSUMED_QUEUE = {"Fn::Sub": "${ProcessingQueue.Arn}"}
CONSUMERS = {
    "ConsumeProcessingQueue": CONSUMED_QUEUE,
    "ConsumeEventsQueue": {"Fn::Sub": "${EventsQueue.Arn}"},
    "ConsumeUploadsQueue": UPLOADS_CONSUMED_QUEUE,
}
# A Secrets Manager name; no IAM wildcards (* ?), which would widen the secret's grant. The
# ProviderSecretName Parameter has the same AllowedPattern (plus empty) for deploy overrides.
SECRET_NAME_PATTERN = re.compile(r"[A-Za-z0-9/_+=.@-]+")


class StackError(Exception):
    """The config and the template disagree, or a packaged template lacks what it needs."""


def stage_environment(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """The stage's environment variables as Chalice merges them (top level, then stage)."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    stages = config.get("stages", {})
    if stage not in stages:
        raise StackError(f"stage {stage!r} is not in {config_path} (has: {sorted(stages)})")
    return {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }


def _name(env: dict[str, str], variable: str) -> str:
    name = env.get(variable, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name):
        raise StackError(f"{variable} is not a queue name: {name!r}")
    return name


def stage_parameters(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """Parameter defaults for ``stage``: queue and secret names from its environment.

    The config names queues, never their URLs (which hold an account id and a region): the
    template creates the queues and hands their URLs to the functions.
    """
    env = stage_environment(stage, config_path)
    for url in ("MAIL_QUEUE_URL", "MAIL_RESULT_QUEUE_URL", "MAIL_EVENTS_QUEUE_URL"):
        if env.get(url):
            raise StackError(
                f"stage {stage!r} sets {url}: name the queue ({url.removesuffix('_URL')}_NAME);"
                " the template creates it and passes its URL"
            )
    missing = [
        name
        for name in (
            "MAIL_QUEUE_NAME",
            "MAIL_RESULT_QUEUE_NAME",
            "SECRET_NAME",
            "ADMIN_SECRET_NAME",
        )
        if not env.get(name)
    ]
    if missing:
        raise StackError(f"stage {stage!r} does not set {', '.join(missing)}")
    processing = _name(env, "MAIL_QUEUE_NAME")
    parameters = {
        "ProcessingQueueName": processing,
        "DeadLetterQueueName": processing.removesuffix("-queue") + "-dlq",
        "ResultQueueName": _name(env, "MAIL_RESULT_QUEUE_NAME"),
        "DatabaseSecretName": env["SECRET_NAME"],
        "AdminSecretName": env["ADMIN_SECRET_NAME"],
    }
    if env.get("MAIL_EVENTS_QUEUE_NAME"):
        events = _name(env, "MAIL_EVENTS_QUEUE_NAME")
        parameters["EventsQueueName"] = events
        parameters["EventsDeadLetterQueueName"] = events.removesuffix("-queue") + "-dlq"
    if env.get("SES_CONFIGURATION_SET"):
        parameters["ConfigurationSetName"] = env["SES_CONFIGURATION_SET"]
    if env.get("MAIL_CONSUMER_MAX_CONCURRENCY"):
        parameters["ConsumerMaxConcurrency"] = env["MAIL_CONSUMER_MAX_CONCURRENCY"]
    if env.get("MAIL_QUEUE_MAX_RECEIVES"):
        parameters["MaxReceiveCount"] = env["MAIL_QUEUE_MAX_RECEIVES"]
    # Optional: unset (or empty) means no provider secret, no variable and no grant.
    provider_secret = env.get("PROVIDER_SECRET_NAME") or ""
    if provider_secret and not SECRET_NAME_PATTERN.fullmatch(provider_secret):
        raise StackError(
            f"stage {stage!r}: PROVIDER_SECRET_NAME {provider_secret!r} is not a secret name"
            " (letters, digits and /_+=.@- only)"
        )
    parameters["ProviderSecretName"] = provider_secret
    return parameters | _campaign_parameters(env)


def _campaign_parameters(env: dict[str, str]) -> dict[str, str]:
    """The campaign bucket's and uploads queue's names (SPEC 13), when the stage names them."""
    parameters = {}
    if env.get("CAMPAIGN_BUCKET"):
        parameters["CampaignBucketName"] = env["CAMPAIGN_BUCKET"]
    if env.get("CAMPAIGN_UPLOADS_QUEUE_NAME"):
        uploads = _name(env, "CAMPAIGN_UPLOADS_QUEUE_NAME")
        parameters["CampaignUploadsQueueName"] = uploads
        parameters["CampaignUploadsDeadLetterQueueName"] = uploads.removesuffix("-queue") + "-dlq"
    return parameters


def merge_template(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, Any]:
    """``infra/queues.json`` and ``infra/campaigns.json`` with ``stage``'s Parameter defaults."""
    template = with_campaigns(json.loads(MERGE_TEMPLATE.read_text(encoding="utf-8")))
    for name, value in stage_parameters(stage, config_path).items():
        parameter = template["Parameters"][name]
        parameter["Default"] = int(value) if parameter["Type"] == "Number" else value
    return template


def with_campaigns(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` (``infra/queues.json``) with the campaigns' fragment merged in, and what
    the campaign functions get: the sweep's environment and role (database, queues, secrets,
    SES) plus the bucket (read its uploads), the uploads queue for its consumer, and for the
    API the right to sign uploads (``s3:PutObject`` on the bucket's ``uploads/`` only)."""
    fragment: dict[str, Any] = json.loads(CAMPAIGNS_TEMPLATE.read_text(encoding="utf-8"))
    for section in ("Parameters", "Resources", "Outputs"):
        template[section].update(fragment[section])
    resources = template["Resources"]
    bucket = {"Ref": "CampaignBucket"}
    sweep = resources["SweepDeliveries"]["Properties"]["Environment"]["Variables"]
    sweep_policy = resources["SweepDeliveriesRole"]["Properties"]["Policies"][0]
    for function in CAMPAIGN_FUNCTIONS:
        resources[function] = {
            "Properties": {
                "Environment": {"Variables": {**copy.deepcopy(sweep), "CAMPAIGN_BUCKET": bucket}}
            }
        }
        policy = copy.deepcopy(sweep_policy)
        policy["PolicyName"] = f"{function}RolePolicy"
        policy["PolicyDocument"]["Statement"].append(
            {
                "Sid": "CampaignFiles",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": CAMPAIGN_FILES,
            }
        )
        resources[f"{function}Role"] = {"Properties": {"Policies": [policy]}}
    resources["ConsumeUploadsQueueRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append(
        {
            "Sid": "UploadsQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ],
            "Resource": {"Fn::GetAtt": ["CampaignUploadsQueue", "Arn"]},
        }
    )
    resources["ConsumeUploadsQueue"]["Properties"]["Events"] = {
        "ConsumeUploadsQueueSqsEventSource": {"Properties": {"Queue": UPLOADS_CONSUMED_QUEUE}}
    }
    resources["APIHandler"]["Properties"]["Environment"]["Variables"]["CAMPAIGN_BUCKET"] = bucket
    resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {
            "Sid": "SignCampaignUploads",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": CAMPAIGN_FILES,
        }
    )
    return template


def queues_template(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, Any]:
    """The queues alone, as a stack of their own (no Chalice resources)."""
    merged = merge_template(stage, config_path)
    return {
        "AWSTemplateFormatVersion": merged["AWSTemplateFormatVersion"],
        "Description": f"MMMS queues for the {stage} stage (processing, result, events, DLQs).",
        "Parameters": {name: merged["Parameters"][name] for name in QUEUE_PARAMETERS},
        "Resources": {name: copy.deepcopy(merged["Resources"][name]) for name in QUEUE_RESOURCES},
        "Outputs": {
            name: output
            for name, output in merged["Outputs"].items()
            if output["Value"].get("Ref", output["Value"].get("Fn::GetAtt", [""])[0])
            in QUEUE_RESOURCES
        },
    }


def create_queue_stack(
    cloudformation: Any,
    stage: str,
    stack_name: str,
    parameters: dict[str, str] | None = None,
    timeout_seconds: float = 60.0,
) -> dict[str, str]:
    """Create the queues-only stack with a boto3 CloudFormation client; return its Outputs."""
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(queues_template(stage)),
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in (parameters or {}).items()
        ],
    )
    deadline = time.monotonic() + timeout_seconds
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            raise StackError(f"stack {stack_name} ended in {status}")
        time.sleep(0.5)


def check_packaged(sam_path: Path) -> dict[str, Any]:
    """Load a packaged ``sam.json`` and fail unless the queues are wired into it."""
    try:
        template: dict[str, Any] = json.loads(sam_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StackError(f"{sam_path} is not a readable JSON template: {err}") from err
    resources = template.get("Resources", {})
    missing = [name for name in QUEUE_RESOURCES if name not in resources]
    if missing:
        raise StackError(f"{sam_path} lacks {', '.join(missing)}: was it merged?")
    for function, queue in CONSUMERS.items():
        consumer = resources.get(function, {}).get("Properties", {})
        events = consumer.get("Events", {}).values()
        queues = [e["Properties"]["Queue"] for e in events if e.get("Type") == "SQS"]
        if queues != [queue]:
            raise StackError(f"{function}'s SQS event source is not {queue}: {queues}")
    return template


def _write(document: dict[str, Any], output: str | None) -> None:
    text = json.dumps(document, indent=2) + "\n"
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("merge-template", "queues-template"):
        command = commands.add_parser(name)
        command.add_argument("--stage", default="production")
        command.add_argument("--output", help="file to write (default: stdout)")
    check = commands.add_parser("check", help="validate a packaged sam.json")
    check.add_argument("sam_json")
    finalize = commands.add_parser(
        "finalize", help="add the platform (infra/operations.py) to a packaged sam.json, in place"
    )
    finalize.add_argument("sam_json")
    args = parser.parse_args(argv)
    try:
        if args.command == "merge-template":
            _write(merge_template(args.stage), args.output)
        elif args.command == "queues-template":
            _write(queues_template(args.stage), args.output)
        elif args.command == "finalize":
            template = json.loads(Path(args.sam_json).read_text(encoding="utf-8"))
            _write(add_platform(template), args.sam_json)
        else:
            check_packaged(Path(args.sam_json))
    except (StackError, PlatformError) as err:
        sys.stderr.write(f"infra/stack.py: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
