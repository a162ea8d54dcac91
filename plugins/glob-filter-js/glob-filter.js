// glob-filter in JavaScript: the behaviour of plugins/glob-filter (rules and messages in
// plugins/README.md), held to the same cases.json. `npm run build` -> glob_filter_js.wasm.

const FIELDS = ["include", "exclude", "minSize", "maxSize"];

function kind(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  switch (typeof v) {
    case "boolean": return "a boolean";
    case "number": return "a number";
    case "string": return "a string";
    default: return "an object";
  }
}

// Tokens: a character (string of length >= 1 code point), or one of the markers below.
const ONE = 1, STAR = 2, ANY_PATH = 3, DIRS = 4;

function compile(pattern) {
  const chars = Array.from(pattern);
  const tokens = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i];
    if (c === "*") {
      let run = 0;
      while (chars[i + run] === "*") run++;
      if (run === 1) { tokens.push(STAR); i += 1; continue; }
      const atSegmentStart = i === 0 || chars[i - 1] === "/";
      if (atSegmentStart && chars[i + run] === "/") { tokens.push(DIRS); i += run + 1; }
      else { tokens.push(ANY_PATH); i += run; }
    } else if (c === "?") { tokens.push(ONE); i += 1; }
    else { tokens.push(c); i += 1; }
  }
  return { source: pattern, tokens };
}

// O(pattern x key) dynamic programme, as in glob.rs.
function matches(glob, keyText) {
  const key = Array.from(keyText);
  const k = key.length;
  let next = new Array(k + 1).fill(false);
  next[k] = true;
  let row = new Array(k + 1).fill(false);
  for (let i = glob.tokens.length - 1; i >= 0; i--) {
    const t = glob.tokens[i];
    let dNext = false;
    for (let j = k; j >= 0; j--) {
      const here = j < k ? key[j] : undefined;
      let v;
      if (typeof t === "string") v = here === t && next[j + 1];
      else if (t === ONE) v = here !== undefined && here !== "/" && next[j + 1];
      else if (t === STAR) v = next[j] || (here !== undefined && here !== "/" && row[j + 1]);
      else if (t === ANY_PATH) v = next[j] || (here !== undefined && row[j + 1]);
      else {
        const d = here !== undefined && ((here === "/" && next[j + 1]) || dNext);
        dNext = d;
        v = next[j] || d;
      }
      row[j] = v;
    }
    [row, next] = [next, row];
  }
  return next[0];
}

function globs(value, field) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw `settings: ${field}: expected a list of glob strings like ["**/*.jpg"], got ${kind(value)}`;
  }
  return value.map((item, i) => {
    if (typeof item !== "string") throw `settings: ${field}[${i}]: expected a glob string, got ${kind(item)}`;
    if (item === "") throw `settings: ${field}[${i}]: empty pattern`;
    return compile(item);
  });
}

function size(value, field) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number") throw `settings: ${field}: expected a whole number of bytes, got ${kind(value)}`;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw `settings: ${field}: expected a whole number of bytes (0 or more), got ${value}`;
  }
  return BigInt(value);
}

function parseSettings(text) {
  if (text.trim() === "") return { include: [], exclude: [] };
  let value;
  try { value = JSON.parse(text); } catch (e) { throw `settings: not valid JSON: ${e.message}`; }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw `settings: expected a JSON object, got ${kind(value)}`;
  }
  for (const name of Object.keys(value)) {
    if (!FIELDS.includes(name)) throw `settings: unknown field ${JSON.stringify(name)} (expected ${FIELDS.join(", ")})`;
  }
  const s = {
    include: globs(value.include, "include"),
    exclude: globs(value.exclude, "exclude"),
    minSize: size(value.minSize, "minSize"),
    maxSize: size(value.maxSize, "maxSize"),
  };
  if (s.minSize !== undefined && s.maxSize !== undefined && s.minSize > s.maxSize) {
    throw `settings: minSize (${s.minSize}) is greater than maxSize (${s.maxSize}); nothing could be copied`;
  }
  return s;
}

function skipReason(object, proposed, s) {
  if (proposed.length === 0) return "suffix not selected";
  const key = object.key;
  const ex = s.exclude.findIndex((g) => matches(g, key));
  if (ex >= 0) return `excluded by exclude[${ex}] ${JSON.stringify(s.exclude[ex].source)}`;
  if (s.include.length > 0 && !s.include.some((g) => matches(g, key))) {
    return `matches no include pattern [${s.include.map((g) => JSON.stringify(g.source)).join(", ")}]`;
  }
  if (s.minSize !== undefined || s.maxSize !== undefined) {
    if (object.size === undefined || object.size === null) return "size unknown, so minSize/maxSize cannot be checked";
    if (s.minSize !== undefined && object.size < s.minSize) return `size ${object.size} is below minSize ${s.minSize}`;
    if (s.maxSize !== undefined && object.size > s.maxSize) return `size ${object.size} is above maxSize ${s.maxSize}`;
  }
  return undefined;
}

// `result<decision, string>`: return the decision for `ok`, throw the message for `err`.
export function decide(org, object, proposed, settings) {
  const reason = skipReason(object, proposed, parseSettings(settings));
  if (reason !== undefined) return { tag: "skip", val: reason };
  return { tag: "copy", val: proposed };
}
