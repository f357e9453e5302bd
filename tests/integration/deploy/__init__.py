"""Deployment artefacts: the CloudFormation package and the queue stack."""
