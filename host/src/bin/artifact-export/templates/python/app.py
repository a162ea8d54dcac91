# {{name}}: a copy-policy plugin for artifact-export, in Python.
#
# The host calls `decide` once per object of the org; see wit/policy.wit for every field and
# README.md for building and testing. This one copies the object to the `proposed` targets,
# unchanged: exactly what the org's plain suffix matching would do.
#
# How the WIT maps to Python (componentize-py):
# - `object` has the attributes `bucket`, `key`, `size` (an int or None), `etag`,
#   `version_id` (a str or None), `event_time`, `event_name`;
# - `proposed` is a list of `Target(bucket, key)` (0.2: `Target(bucket, key, storage_class,
#   tags)`);
# - 0.2 only: `object` also has `content_type`, `content_length`, `last_modified`,
#   `storage_class`, `metadata` (a list of `Pair(key, value)`) and `checksum`;
#   `host.tags()` reads the object's tags (raises `Err` when they cannot be read);
# - return `Decision_Copy(targets)` or `Decision_Skip(reason)` for `ok(...)`;
# - raise `Err(message)` for `err(message)`.
# The component is built with `--stub-wasi`: no console, clock, random or network (a plugin
# has none of them; calling one traps). Log through `host.log`.
#
# Everything imported or computed at the top of this file is initialised at build time (the
# component starts from a snapshot), so a decision pays only for what `decide` does.

import wit_world
from componentize_py_types import Err  # noqa: F401 (raise Err("...") to answer err)
from wit_world.imports import host
from wit_world.imports.types import Decision_Copy, Decision_Skip, Level  # noqa: F401


class WitWorld(wit_world.WitWorld):
    def decide(self, org, object, proposed, settings):
        """`result<decision, string>`: return the decision for `ok`, raise `Err` for `err`."""
        if not proposed:
            host.log(Level.DEBUG, f"{org}: {object.key}: suffix not selected")
        return Decision_Copy(proposed)
