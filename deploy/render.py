#!/usr/bin/env python3
"""Renders deploy/template.yaml for one set of parameter values as CloudFormation would create
it: the SAM transform applied by aws-sam-translator (the library behind `sam` and
CloudFormation's own AWS::Serverless transform), then parameters checked and applied,
conditions evaluated, resources and outputs whose condition is false dropped, and intrinsic
functions resolved by cloud-radar. Prints one JSON document on stdout:

    {"parameterErrors": [...], "ruleViolations": [...], "resources": {...}, "outputs": {...}}

    target/tools-venv/bin/python deploy/render.py deploy/template.yaml TriggerMode=SQS DestinationBucketNames=a,b ...

Nothing is deployed, so references have no value: a Ref to a resource becomes
"{{ref:LogicalId}}", an attribute "{{LogicalId.Attr}}". Pseudo parameters: partition aws (or
AWS::Partition=aws-cn / aws-us-gov ...), account 123456789012, stack name artifact-export.
The function's local CodeUri is replaced by an S3 location first, as `sam package` does (SAM
accepts only S3 code locations). tests/integration/deploy/ checks the IAM statements of the
output, including the role and policies SAM generates.

This file glues the two libraries together and fills three gaps of cloud-radar 0.17: the
template's Rules (ignored there; their conditions are evaluated with cloud-radar's own
functions), AllowedValues of Number parameters (checked for String ones only), and
AWS::NoValue inside lists (CloudFormation drops the item). Needs the venv of `make tools`
(aws-sam-translator, cloud-radar, pinned in the Makefile).
"""

import contextlib
import copy
import json
import os
import sys

# Region per partition: SAM takes the partition of generated ARNs from the region.
REGIONS = {
    "aws": "us-east-1",
    "aws-cn": "cn-north-1",
    "aws-us-gov": "us-gov-west-1",
    "aws-iso": "us-iso-east-1",
    "aws-iso-b": "us-isob-east-1",
}

NO_VALUE = "{{AWS::NoValue}}"

# The S3 location `sam package` would upload the code to.
PACKAGED_CODE = "s3://artifact-export-packaged/artifact-export.zip"


def sam_transform(template, partition):
    # The translator looks the region up from the environment (boto3); set it before import.
    os.environ["AWS_DEFAULT_REGION"] = REGIONS.get(partition, "us-east-1")
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = PACKAGED_CODE
    # No managed policy names to look up: the template names none (only SAM's own basic
    # execution role, which the translator knows).
    return Translator(None, Parser()).translate(template, {}, get_managed_policy_map=lambda: {})


def placeholders(template):
    """Cloud-radar resolves a Ref to a resource as its logical id and a GetAtt as "Id.Attr"
    unless the resource's Metadata names values; name unmistakable ones instead."""
    attrs = {}

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Fn::GetAtt":
                    parts = value.split(".", 1) if isinstance(value, str) else value
                    if isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts):
                        attrs.setdefault(parts[0], set()).add(parts[1])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(template)
    for logical_id, resource in template.get("Resources", {}).items():
        metadata = resource.setdefault("Metadata", {})
        metadata["Cloud-Radar"] = {
            "ref": "{{ref:%s}}" % logical_id,
            "attribute-values": {a: "{{%s.%s}}" % (logical_id, a) for a in sorted(attrs.get(logical_id, ()))},
        }


def rule_violations(radar, rules):
    """Each Rules assertion whose RuleCondition holds and whose Assert does not."""
    found = []
    for name, rule in rules.items():
        if "RuleCondition" in rule and radar.resolve_values(copy.deepcopy(rule["RuleCondition"])) is not True:
            continue
        for assertion in rule.get("Assertions", []):
            if radar.resolve_values(copy.deepcopy(assertion["Assert"])) is not True:
                found.append("%s: %s" % (name, " ".join(assertion.get("AssertDescription", "").split())))
    return found


def drop_no_value(node):
    if isinstance(node, dict):
        return {k: drop_no_value(v) for k, v in node.items() if v != NO_VALUE}
    if isinstance(node, list):
        return [drop_no_value(v) for v in node if v != NO_VALUE]
    return node


def strip_placeholders(section):
    for resource in section.values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            metadata.pop("Cloud-Radar", None)
            if not metadata:
                del resource["Metadata"]


def refused(why):
    return {"parameterErrors": [why], "ruleViolations": [], "resources": {}, "outputs": {}}


def render(path, values):
    from cfn_tools import load_yaml
    from cloud_radar.cf.unit import Template

    partition = values.pop("AWS::Partition", "aws")
    with open(path) as f:
        # cfn-flip's loader knows CloudFormation's short forms (!Ref, !Sub, ...); the JSON
        # round trip turns its ordered mappings into plain ones.
        template = json.loads(json.dumps(load_yaml(f.read())))
    rules = template.get("Rules", {})
    # CloudFormation hands every parameter value over as a string (a Number default of 300
    # is "300", which is what Fn::FindInMap keys on).
    for spec in template.get("Parameters", {}).values():
        for field in ("Default", "AllowedValues"):
            if field in spec:
                spec[field] = [str(v) for v in spec[field]] if isinstance(spec[field], list) else str(spec[field])
    transformed = sam_transform(template, partition)
    placeholders(transformed)

    Template.Partition = partition
    Template.AccountId = "123456789012"
    Template.StackName = "artifact-export"
    # cloud-radar resolves Ref AWS::NoValue to this marker and drops properties holding it;
    # list items holding it are dropped below (CloudFormation drops both).
    Template.NoValue = NO_VALUE
    # cloud-radar checks AllowedValues of String parameters only; CloudFormation of every type.
    for name, value in values.items():
        spec = template.get("Parameters", {}).get(name, {})
        if spec.get("Type") == "Number" and "AllowedValues" in spec and value not in spec["AllowedValues"]:
            return refused("Value %s not in allowed values for parameter %s" % (value, name))
    try:
        # cloud-radar prints progress on stdout, which carries the JSON here.
        with contextlib.redirect_stdout(sys.stderr):
            radar = Template(transformed)
            rendered = radar.render(values, region=REGIONS.get(partition, "us-east-1"))
    except ValueError as e:
        # Parameter constraints (AllowedPattern, AllowedValues, lengths, bounds) and missing
        # values: CloudFormation refuses the stack before creating anything.
        return refused(str(e))
    resources = drop_no_value(rendered.get("Resources", {}))
    outputs = drop_no_value(rendered.get("Outputs", {}))
    strip_placeholders(resources)
    return {
        "parameterErrors": [],
        "ruleViolations": rule_violations(radar, rules),
        "resources": resources,
        "outputs": outputs,
    }


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    values = {}
    for arg in argv[2:]:
        name, sep, value = arg.partition("=")
        if not sep:
            print("render.py: %r: expected Name=Value" % arg, file=sys.stderr)
            return 2
        values[name] = value
    json.dump(render(argv[1], values), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
