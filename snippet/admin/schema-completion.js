// Completion of rules keys and values from the rules' JSON Schema (`touchpoint schema campaign`),
// for YAML written in block style, as the examples in rules/ are. A few dozen lines instead of a
// generic JSON-Schema-for-YAML package: our schemas use properties, items, $ref, anyOf/oneOf/
// allOf, if/then/else and enum, and that is all this follows.

const KEY_LINE = /^(\s*)((?:-\s+)*)([A-Za-z0-9_-]*)$/;
const VALUE_LINE = /^(\s*)((?:-\s+)*)([A-Za-z0-9_-]+):\s+([A-Za-z0-9_-]*)$/;
const MAPPING_LINE = /^(\s*)((?:-\s+)*)([A-Za-z0-9_"'-]+):(\s|$)/;

/** Where a line's content starts: its indentation, and its key's column after any `- `. */
function shape(line) {
  const match = /^(\s*)((?:-\s+)*)(.*)$/.exec(line);
  return { dash: match[2] ? match[1].length : -1, key: match[1].length + match[2].length, rest: match[3] };
}

/**
 * The path from the document's root to the mapping that a key on line `lineNo` (1-based)
 * belongs to: key names, and "[]" for a list item. `prefix` is that line's text before the key
 * (indentation and any `- `); `lineAt(n)` gives line n's text.
 */
export function yamlPath(lineAt, lineNo, prefix) {
  const path = [];
  const current = shape(prefix);
  // `indent`: the column of the key whose parent we look for; `inItem`: that key opens or
  // continues a list item whose dash is at `indent`, so the list's owner is the next line above
  // with a key at that column or left of it.
  let indent = current.key;
  let inItem = false;
  if (current.dash >= 0) {
    path.push('[]');
    indent = current.dash;
    inItem = true;
  }
  for (let n = lineNo - 1; n >= 1 && (indent > 0 || inItem); n--) {
    const text = lineAt(n);
    if (!text.trim() || text.trim().startsWith('#')) continue;
    const line = shape(text);
    if (inItem ? line.dash === indent || line.key > indent : line.key > indent) continue;
    if (!inItem && line.key === indent) {
      if (line.dash < 0) continue; // a sibling key
      path.push('[]'); // the first key of the list item we are in
      indent = line.dash;
      inItem = true;
      continue;
    }
    const mapping = MAPPING_LINE.exec(text);
    if (!mapping) break; // a scalar or flow value: not a block mapping this understands
    path.push(mapping[3].replace(/["']/g, ''));
    if (line.dash >= 0) {
      path.push('[]'); // `- key:` opens a mapping inside a list item
      indent = line.dash;
      inItem = true;
    } else {
      indent = line.key;
      inItem = false;
    }
  }
  return path.reverse();
}

function resolve(schema, root, seen = new Set()) {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return [];
  seen.add(schema);
  let out = [schema];
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')) {
    const target = schema.$ref
      .slice(2)
      .split('/')
      .reduce((node, part) => (node ? node[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), root);
    out = out.concat(resolve(target, root, seen));
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    for (const sub of schema[key] || []) out = out.concat(resolve(sub, root, seen));
  }
  for (const key of ['then', 'else']) out = out.concat(resolve(schema[key], root, seen));
  return out;
}

/** The schemas that may describe the node at `path`. */
export function schemasAt(root, path) {
  let here = resolve(root, root);
  for (const step of path) {
    const next = [];
    for (const schema of here) {
      const sub = step === '[]' ? schema.items : schema.properties && schema.properties[step];
      next.push(...resolve(sub, root));
    }
    here = next;
  }
  return here;
}

function describe(schemas) {
  for (const s of schemas) if (typeof s.description === 'string') return s.description;
  return undefined;
}

/** The keys a mapping at `path` may hold, with their descriptions. */
export function keysAt(root, path) {
  const keys = new Map();
  for (const schema of schemasAt(root, path)) {
    for (const [name, sub] of Object.entries(schema.properties || {})) {
      if (!keys.has(name)) keys.set(name, describe(resolve(sub, root)));
    }
  }
  return keys;
}

/** The values a scalar at `path` may take: enums, consts and booleans. */
export function valuesAt(root, path) {
  const values = new Set();
  for (const schema of schemasAt(root, path)) {
    for (const v of schema.enum || []) if (typeof v !== 'object') values.add(String(v));
    if ('const' in schema && typeof schema.const !== 'object') values.add(String(schema.const));
    if (schema.type === 'boolean') ['true', 'false'].forEach((v) => values.add(v));
  }
  return [...values];
}

/** A CodeMirror completion source; `getSchema()` returns the schema or null while loading. */
export function schemaCompletion(getSchema) {
  return (context) => {
    const schema = getSchema();
    if (!schema) return null;
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, context.pos - line.from);
    const lineAt = (n) => context.state.doc.line(n).text;
    const key = KEY_LINE.exec(before);
    if (key && (key[3] || context.explicit)) {
      const path = yamlPath(lineAt, line.number, key[1] + key[2]);
      const options = [...keysAt(schema, path)].map(([label, info]) => ({
        label,
        type: 'property',
        info,
        apply: `${label}: `,
      }));
      return options.length ? { from: context.pos - key[3].length, options, validFor: /^[\w-]*$/ } : null;
    }
    const value = VALUE_LINE.exec(before);
    if (value) {
      const path = yamlPath(lineAt, line.number, value[1] + value[2]);
      const options = valuesAt(schema, [...path, value[3]]).map((label) => ({ label, type: 'enum' }));
      return options.length ? { from: context.pos - value[4].length, options, validFor: /^[\w-]*$/ } : null;
    }
    return null;
  };
}
