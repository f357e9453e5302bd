#!/usr/bin/env bash
# Deploy a packaged stage: upload the code, create or update the stack, wait for it.
#
#   make deploy STAGE=production PARAMETERS="SubnetIds=subnet-a,subnet-b SecurityGroupIds=sg-1 AlarmEmail=ops@example.org"
#
# Needs the AWS CLI (v2, or `pip install awscli`) with credentials and a region for the target
# account. ARTIFACT_BUCKET (default mmms-artifacts-<account>-<region>) holds the code; it is
# created on first use. The stack is mmms-<stage> (STACK_NAME overrides). Migrations are part
# of the stack (Custom::DatabaseMigrations): a failed migration fails the deploy and
# CloudFormation rolls back. Parameters not given keep their current value on an update.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAGE="${STAGE:-production}"
OUT="${OUT:-build/package}"
STACK_NAME="${STACK_NAME:-mmms-${STAGE}}"
PARAMETERS="${PARAMETERS:-}"
AWS="${AWS:-aws}"

account="$("$AWS" sts get-caller-identity --query Account --output text)"
region="$("$AWS" configure get region || true)"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-$region}}"
if [ -z "$region" ]; then
    echo "infra/deploy.sh: set AWS_REGION (or a region in the AWS CLI's profile)" >&2
    exit 1
fi
bucket="${ARTIFACT_BUCKET:-mmms-artifacts-${account}-${region}}"

if ! "$AWS" s3api head-bucket --bucket "$bucket" 2>/dev/null; then
    echo "Creating the artifact bucket $bucket"
    if [ "$region" = "us-east-1" ]; then
        "$AWS" s3api create-bucket --bucket "$bucket" --region "$region" >/dev/null
    else
        "$AWS" s3api create-bucket --bucket "$bucket" --region "$region" \
            --create-bucket-configuration "LocationConstraint=$region" >/dev/null
    fi
    "$AWS" s3api put-public-access-block --bucket "$bucket" --public-access-block-configuration \
        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
fi

"$AWS" cloudformation package --region "$region" --template-file "$OUT/sam.json" \
    --s3-bucket "$bucket" --s3-prefix "$STACK_NAME" \
    --output-template-file "$OUT/packaged.yaml" >/dev/null

# shellcheck disable=SC2086 # PARAMETERS is a list of Key=Value words
"$AWS" cloudformation deploy --region "$region" --template-file "$OUT/packaged.yaml" \
    --stack-name "$STACK_NAME" --s3-bucket "$bucket" --s3-prefix "$STACK_NAME" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-fail-on-empty-changeset \
    ${PARAMETERS:+--parameter-overrides $PARAMETERS}

"$AWS" cloudformation describe-stacks --region "$region" --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='EndpointURL' || OutputKey=='AlarmTopicArn'].[OutputKey,OutputValue]" \
    --output text
