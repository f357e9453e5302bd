"""The campaigns' part of the package (SPEC 13, infra/campaigns.json): the upload bucket with
its lifecycle rule and notifications, the uploads queue and its dead-letter queue, the two
campaign functions, and least-privilege access to the files."""

from __future__ import annotations

from tests.integration.deploy.conftest import PSEUDO, Packaged, allows

ACCOUNT = f"{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
BUCKET = "mmms-production-campaign-uploads"
FILE = f"arn:aws:s3:::{BUCKET}/uploads/cmp_0123.csv"


def test_the_bucket_expires_uploads_blocks_public_access_and_notifies_the_uploads_queue(
    production: Packaged,
) -> None:
    bucket = production.resources["CampaignBucket"]
    properties = production.resolve(bucket["Properties"])
    assert properties["BucketName"] == BUCKET
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["Prefix"], int(rule["ExpirationInDays"])) == (
        "Enabled",
        "uploads/",
        7,
    )
    assert all(properties["PublicAccessBlockConfiguration"].values())
    (notification,) = properties["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    # S3 checks it may send to the queue when the notification is created.
    assert bucket["DependsOn"] == ["CampaignUploadsQueuePolicy"]
    assert notification["Queue"] == production.resolve(
        {"Fn::GetAtt": ["CampaignUploadsQueue", "Arn"]}
    )
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_only_the_bucket_may_send_to_the_uploads_queue_which_dead_letters(
    production: Packaged,
) -> None:
    policy = production.resolve(production.resources["CampaignUploadsQueuePolicy"]["Properties"])
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Action"]) == (
        {"Service": "s3.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{BUCKET}"},
        "StringEquals": {"aws:SourceAccount": PSEUDO["AWS::AccountId"]},
    }
    queue = production.resolve(production.resources["CampaignUploadsQueue"]["Properties"])
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    consumer = production.resources["ConsumeUploadsQueue"]["Properties"]
    # A message must stay invisible while the function that received it may still run.
    assert int(queue["VisibilityTimeout"]) > int(consumer["Timeout"]) == 900
    (source,) = consumer["Events"].values()
    assert source["Properties"]["Queue"] == {"Fn::Sub": "${CampaignUploadsQueue.Arn}"}
    assert source["Properties"]["BatchSize"] == 1
    assert production.queue_name("CampaignUploadsDeadLetterQueue") == "mmms-campaign-uploads-dlq"


def test_campaign_functions_read_files_the_api_signs_uploads_nothing_more(
    production: Packaged,
) -> None:
    (tick,) = production.resources["TickCampaigns"]["Properties"]["Events"].values()
    assert tick["Properties"]["Schedule"] == "rate(1 minute)"
    for function in ("ConsumeUploadsQueue", "TickCampaigns"):
        statements = production.statements(function)
        variables = production.variables(function)
        assert variables["CAMPAIGN_BUCKET"] == "<CampaignBucket>"  # the bucket created
        assert variables["MAIL_QUEUE_URL"] == production.resolve({"Ref": "ProcessingQueue"})
        assert allows(statements, "s3:GetObject", FILE)
        assert not allows(statements, "s3:PutObject", FILE)
        assert not allows(statements, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/other/key")
        assert not allows(statements, "s3:GetObject", "arn:aws:s3:::another-bucket/uploads/x")
        assert allows(
            statements, "sqs:SendMessage", f"arn:aws:sqs:{ACCOUNT}:mmms-email-processing-queue"
        )
    uploads_queue = f"arn:aws:sqs:{ACCOUNT}:mmms-campaign-uploads-queue"
    uploads = production.statements("ConsumeUploadsQueue")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert allows(uploads, action, uploads_queue)
        assert not allows(production.statements("TickCampaigns"), action, uploads_queue)

    api = production.statements("APIHandler")
    assert production.variables("APIHandler")["CAMPAIGN_BUCKET"] == "<CampaignBucket>"
    assert allows(api, "s3:PutObject", FILE)
    assert not allows(api, "s3:GetObject", FILE)
    assert not allows(api, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/elsewhere")
