#!/usr/bin/env python3
"""Renders deploy/template.yaml for one set of parameter values, as CloudFormation would
see it before creating anything: parameters with defaults applied and checked, conditions
evaluated, resources and outputs whose condition is false dropped, intrinsic functions
(Ref, Fn::Sub, Fn::Join, Fn::Split, Fn::If, Fn::Select, Fn::FindInMap, Fn::GetAtt) resolved.
Prints one JSON document on stdout.

    python3 deploy/render.py deploy/template.yaml TriggerMode=SQS DestinationBucketNames=a,b ...

Refs to resources become "{{ref:LogicalId}}", attributes "{{LogicalId.Attr}}" (nothing is
deployed, so they have no value). Pseudo parameters: partition aws (or AWS::Partition=...),
region us-east-1, account 123456789012, stack name artifact-export. The SAM transform is not
applied: an AWS::Serverless::Function keeps its Policies, which become its role's inline
policy (SAM adds the basic logging policy and sqs:SendMessage on the EventInvokeConfig
destination). tests/integration/deploy.rs checks the IAM statements of the output.

Needs PyYAML only (cfn-lint brings it into target/tools-venv).
"""

import json
import re
import sys

import yaml

NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: !Ref x -> {"Ref": x}, !GetAtt a.b ->
    {"Fn::GetAtt": [a, b]}, !Foo v -> {"Fn::Foo": v}, !Condition c -> {"Condition": c}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


CfnLoader.add_multi_constructor("!", _tag)


class RenderError(Exception):
    pass


class Renderer:
    def __init__(self, template, values):
        self.t = template
        self.pseudo = {
            "AWS::Partition": values.pop("AWS::Partition", "aws"),
            "AWS::Region": values.pop("AWS::Region", "us-east-1"),
            "AWS::AccountId": "123456789012",
            "AWS::StackName": values.pop("AWS::StackName", "artifact-export"),
            "AWS::StackId": "{{stack-id}}",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.errors = []
        self.params = self._parameters(values)
        self.conditions = {}

    def _parameters(self, values):
        declared = self.t.get("Parameters", {})
        for name in values:
            if name not in declared:
                self.errors.append(f"unknown parameter {name}")
        out = {}
        for name, spec in declared.items():
            if name in values:
                raw = values[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                self.errors.append(f"{name}: no value and no default")
                continue
            raw = str(raw) if not isinstance(raw, bool) else str(raw).lower()
            kind = spec.get("Type", "String")
            items = raw.split(",") if kind == "CommaDelimitedList" else [raw]
            for item in items:
                self._check(name, spec, item)
            out[name] = items if kind == "CommaDelimitedList" else raw
        return out

    def _check(self, name, spec, value):
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            self.errors.append(f"{name}: {value!r} not in {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            self.errors.append(f"{name}: {value!r} does not match {pattern}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                self.errors.append(f"{name}: {value!r} is not a number")
                return
            if "MinValue" in spec and number < float(spec["MinValue"]):
                self.errors.append(f"{name}: {value} < {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                self.errors.append(f"{name}: {value} > {spec['MaxValue']}")
        for key, test in (("MinLength", lambda n: len(value) < n), ("MaxLength", lambda n: len(value) > n)):
            if key in spec and test(int(spec[key])):
                self.errors.append(f"{name}: {value!r} violates {key} {spec[key]}")

    def _condition(self, name):
        if name not in self.conditions:
            if name not in self.t.get("Conditions", {}):
                raise RenderError(f"unknown condition {name}")
            self.conditions[name] = None  # cycle guard
            self.conditions[name] = self._truth(self.t["Conditions"][name])
        if self.conditions[name] is None:
            raise RenderError(f"condition {name} refers to itself")
        return self.conditions[name]

    def _truth(self, node):
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Condition":
                return self._condition(arg)
            if fn == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self._truth(arg[0])
            if fn == "Fn::And":
                return all(self._truth(x) for x in arg)
            if fn == "Fn::Or":
                return any(self._truth(x) for x in arg)
        raise RenderError(f"not a condition: {node!r}")

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        return "{{ref:%s}}" % name

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self._condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        out = {}
        for key, child in node.items():
            v = self.value(child)
            if v is not NO_VALUE:
                out[key] = v
        return out

    def _function(self, fn, arg):
        if fn == "Fn::If":
            name, yes, no = arg
            return self.value(yes if self._condition(name) else no)
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
            return self._sub(text, extra)
        if fn == "Fn::Join":
            sep, items = arg
            items = self.value(items)
            return sep.join(str(i) for i in items)
        if fn == "Fn::Split":
            sep, text = arg
            return str(self.value(text)).split(sep)
        if fn == "Fn::Select":
            index, items = arg
            return self.value(items)[int(self.value(index))]
        if fn == "Fn::FindInMap":
            m, a, b = (self.value(x) for x in arg)
            try:
                return self.t["Mappings"][m][str(a)][str(b)]
            except KeyError as e:
                raise RenderError(f"Fn::FindInMap {m}/{a}/{b}: no {e}") from None
        if fn == "Fn::GetAtt":
            resource, attribute = arg
            return "{{%s.%s}}" % (resource, attribute)
        if fn in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._truth({fn: arg})
        raise RenderError(f"{fn} is not supported by render.py")

    def _sub(self, text, extra):
        def one(match):
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in extra:
                v = extra[inner]
            elif "." in inner and not inner.startswith("AWS::"):
                v = "{{%s}}" % inner
            else:
                v = self.ref(inner)
            if isinstance(v, list) or v is NO_VALUE:
                raise RenderError(f"Fn::Sub ${{{inner}}} is not a string")
            return str(v)

        return re.sub(r"\$\{([^}]*)\}", one, text)

    def _kept(self, section):
        out = {}
        for name, body in self.t.get(section, {}).items():
            if "Condition" in body and not self._condition(body["Condition"]):
                continue
            out[name] = self.value(body)
        return out

    def _rule_violations(self):
        out = []
        for name, rule in self.t.get("Rules", {}).items():
            if "RuleCondition" in rule and not self._truth(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not self._truth(assertion["Assert"]):
                    out.append(f"{name}: {' '.join(assertion.get('AssertDescription', '').split())}")
        return out

    def render(self):
        if self.errors:
            # CloudFormation stops here: nothing is evaluated with invalid parameters.
            return {
                "parameters": self.params,
                "parameterErrors": self.errors,
                "ruleViolations": [],
                "conditions": {},
                "resources": {},
                "outputs": {},
            }
        for name in self.t.get("Conditions", {}):
            self._condition(name)
        return {
            "parameters": self.params,
            "parameterErrors": self.errors,
            "ruleViolations": self._rule_violations(),
            "conditions": self.conditions,
            "resources": self._kept("Resources"),
            "outputs": self._kept("Outputs"),
        }


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        template = yaml.load(f, Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)
    values = {}
    for arg in argv[2:]:
        name, sep, value = arg.partition("=")
        if not sep:
            print(f"render.py: expected Name=Value, got {arg!r}", file=sys.stderr)
            return 2
        values[name] = value
    try:
        out = Renderer(template, values).render()
    except RenderError as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
