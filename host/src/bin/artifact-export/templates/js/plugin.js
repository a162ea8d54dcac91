// {{name}}: a copy-policy plugin for artifact-export.
//
// The host calls `decide` once per object of the org; see wit/policy.wit for every field and
// README.md for building and testing. This one copies the object to the `proposed` targets,
// unchanged: exactly what the org's plain suffix matching would do.
//
// How the WIT maps to JavaScript (ComponentizeJS):
// - `object` is `{bucket, key, size, etag, versionId, eventTime, eventName}`; `size` is a
//   BigInt or undefined, `versionId` a string or undefined;
// - `proposed` is a list of `{bucket, key}` (0.2: also `storageClass` and `tags`);
// - 0.2 only: `object` also has `contentType`, `contentLength`, `lastModified`,
//   `storageClass`, `metadata` (a list of `{key, value}`) and `checksum`; `tags()` from
//   the host interface reads the object's tags (throws a string when they cannot be read);
// - return `{tag: "copy", val: targets}` or `{tag: "skip", val: reason}` for `ok(...)`;
// - throw a string for `err(message)`.
// The component runs without WASI (no console, clock or random): a plugin has none of them.

import { log } from "artifact-export:policy/host@{{wit_version}}";

export function decide(org, object, proposed, settings) {
  if (proposed.length === 0) {
    log("debug", `${org}: ${object.key}: suffix not selected`);
  }
  return { tag: "copy", val: proposed };
}
