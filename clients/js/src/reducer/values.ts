// SPDX-License-Identifier: Apache-2.0
// Value templates and the values ops take (docs/api/rooms.md, "Values" and the op table of
// "Schema"): which "$" references a template may hold, how they resolve against an event, and
// which resolved values each op accepts. Every mistake throws VellumError('invalid_argument').
import type { Json, JsonObject } from '../types.js';
import { VALUE_DEPTH_MAX, isInteger, isObject, member, setMember } from './json.js';
import { invalid, utf8Length } from './text.js';

export type Policy = 'lww' | 'set' | 'list' | 'max' | 'counter';
export type OpKind = 'set' | 'add' | 'remove' | 'increment' | 'max' | 'insert' | 'delete';

/** A list item's "id" (and a placeholder's value, and a path segment): 1 to 256 bytes. */
export const ITEM_ID_BYTES_MAX = 256;

/** What a template's references resolve to. */
export interface TemplateContext {
  participant: string;
  eventId: string;
  payload: Json;
}

/** "a.b" -> ["a", "b"] (empty fields are kept, for the caller to refuse). */
export function splitFields(dotted: string): string[] {
  return dotted.split('.');
}

function isReference(text: string): boolean {
  return text.startsWith('$') && text[1] !== '$';
}

/** Validates the "$" references of a value template when the schema is parsed. */
export function checkTemplate(value: Json, depth: number, where: string): void {
  if (depth > VALUE_DEPTH_MAX) throw invalid(`${where}: value nested too deeply`);
  if (typeof value === 'string') {
    if (!isReference(value)) return;
    if (value === '$participant' || value === '$eventId' || value === '$payload') return;
    if (value.startsWith('$payload.') && value.length > 9 && !value.endsWith('.') &&
        !value.includes('..')) {
      return;
    }
    throw invalid(`${where}: unknown reference '${value}' (expected $payload, ` +
      '$payload.<field>, $participant or $eventId; write $$ for a literal $)');
  }
  const children = Array.isArray(value) ? value : isObject(value) ? Object.values(value) : [];
  for (const child of children) checkTemplate(child, depth + 1, where);
}

export function templateHasReferences(value: Json): boolean {
  if (typeof value === 'string') return isReference(value);
  const children = Array.isArray(value) ? value : isObject(value) ? Object.values(value) : [];
  return children.some(templateHasReferences);
}

/** The member of `payload` at `fields` (["a", "b"]: payload.a.b); throws when it is missing. */
export function payloadField(payload: Json, fields: readonly string[]): Json {
  let node: Json = payload;
  for (const field of fields) {
    const child = isObject(node) ? member(node, field) : undefined;
    if (child === undefined) throw invalid(`payload has no field '${fields.join('.')}'`);
    node = child;
  }
  return node;
}

/** Replaces the references of a template the schema accepted; "$$x" is the string "$x". */
export function resolveValue(value: Json, context: TemplateContext): Json {
  if (typeof value === 'string') {
    if (value.startsWith('$$')) return value.slice(1);
    if (!value.startsWith('$')) return value;
    if (value === '$participant') return context.participant;
    if (value === '$eventId') return context.eventId;
    if (value === '$payload') return context.payload;
    return payloadField(context.payload, splitFields(value.slice(9)));
  }
  if (Array.isArray(value)) return value.map((child) => resolveValue(child, context));
  if (!isObject(value)) return value;
  const resolved: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    setMember(resolved, key, resolveValue(child, context));
  }
  return resolved;
}

function isItemId(value: Json | undefined): value is string {
  return typeof value === 'string' && value.length > 0 && utf8Length(value) <= ITEM_ID_BYTES_MAX;
}

/**
 * Checks that a value (already fit for state) is what an op of `kind` takes: set: anything;
 * add/remove: a string, integer or boolean; increment/max: an integer; insert: an object whose
 * "id" is a 1-256 byte string; a list's delete: such an id.
 */
export function checkOpValue(kind: OpKind, policy: Policy, value: Json): void {
  switch (kind) {
    case 'set':
      return;
    case 'add':
    case 'remove':
      if (typeof value === 'string' || isInteger(value) || typeof value === 'boolean') return;
      throw invalid('set elements are strings, integers or booleans');
    case 'increment':
    case 'max':
      if (isInteger(value)) return;
      throw invalid(`${kind} takes an integer`);
    case 'insert': {
      const id = isObject(value) ? member(value, 'id') : undefined;
      if (typeof id !== 'string') throw invalid('insert takes an object with a string "id"');
      checkOpValue('delete', 'list', id);
      return;
    }
    case 'delete':
      if (policy === 'lww' || isItemId(value)) return;
      throw invalid(`list item ids are strings of 1 to ${ITEM_ID_BYTES_MAX} bytes`);
  }
}
