#!/usr/bin/env bash
# Package MMMS for CloudFormation: Chalice's SAM template merged with infra/queues.json.
#
#   STAGE=production OUT=build/package infra/package.sh
#
# Writes $OUT/sam.json and $OUT/deployment.zip. The merge template's Parameter defaults (queue,
# dead-letter queue and secret names, MaxReceiveCount) come from the stage's environment in
# .chalice/config.json; infra/operations.py then adds the VPC settings, the migrations step,
# the alarms, SnapStart and the warm-up schedule. Deploy with infra/deploy.sh (make deploy).
#
# CHALICE must run on Python 3.12 or later (Lambda SnapStart for Python needs the python3.12
# runtime, and Chalice takes the runtime and the wheels it fetches from its own Python):
# `make package` uses .venv/lambda, made with LAMBDA_PYTHON.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAGE="${STAGE:-production}"
OUT="${OUT:-build/package}"
CHALICE="${CHALICE:-.venv/lambda/bin/chalice}"
PYTHON="${PYTHON:-.venv/bin/python}"
# chalice package wants a region to start a session; the template itself uses ${AWS::Region}.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-eu-central-1}}"

merge="$(mktemp "${TMPDIR:-/tmp}/mmms-merge-${STAGE}-XXXXXX.json")"
trap 'rm -f "$merge"' EXIT

"$PYTHON" -m infra.stack merge-template --stage "$STAGE" --output "$merge"
"$CHALICE" package --pkg-format cloudformation --stage "$STAGE" \
    --merge-template "$merge" "$OUT"
"$PYTHON" -m json.tool "$OUT/sam.json" >/dev/null
"$PYTHON" -m infra.stack finalize "$OUT/sam.json"
"$PYTHON" -m infra.stack check "$OUT/sam.json"
echo "Packaged stage $STAGE: $OUT/sam.json, $OUT/deployment.zip"
