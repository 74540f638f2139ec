// SPDX-License-Identifier: Apache-2.0
// An app's room schema: which merge policy governs each path of the room document and which
// operations each action performs there (docs/api/rooms.md, "Schema"). A port of the C++
// src/rooms/schema.cc: the same documents parse, the same ones are refused, with a message
// naming the place. Members are visited in the C++ order (keys by UTF-8 bytes), so the first
// mistake reported is the one the server reports.
import type { Json, JsonObject } from '../types.js';
import { PATH_SEGMENTS_MAX, frozenCopy, isObject, member, toStateValue } from './json.js';
import { invalid, isWellFormed, sortedKeys, utf8Length } from './text.js';
import {
  ITEM_ID_BYTES_MAX, type OpKind, type Policy, checkOpValue, checkTemplate, resolveValue,
  splitFields, templateHasReferences,
} from './values.js';

export const SCHEMA_POLICIES_MAX = 256;
export const SCHEMA_ACTIONS_MAX = 256;
export const ACTION_OPS_MAX = 32;
export const ACTION_NAME_BYTES_MAX = 128;
/** Bytes of a path segment, and of the value a placeholder resolves to. */
export const PATH_SEGMENT_BYTES_MAX = ITEM_ID_BYTES_MAX;

/** "/scores/*" -> counter. A `*` segment matches any one segment. */
export interface PolicyRule {
  readonly pointer: string;
  readonly pattern: readonly string[];
  readonly policy: Policy;
}

/** One segment of an op's path: a literal, or a placeholder resolved from the event. */
export type PathSegment =
  | { readonly kind: 'literal'; readonly literal: string }
  | { readonly kind: 'participant' }
  | { readonly kind: 'payload'; readonly fields: readonly string[] };

/** One operation of an action, bound to the rule of the path it addresses. */
export interface OpSpec {
  readonly kind: OpKind;
  readonly pointer: string;
  readonly path: readonly PathSegment[];
  readonly policy: Policy;
  /** The value template; undefined where the op takes none (lww delete, bare increment). */
  readonly value: Json | undefined;
}

const POLICIES: readonly Policy[] = ['lww', 'set', 'list', 'max', 'counter'];
// Which policies each op fits: delete fits an lww register and a list.
const OP_FITS: Readonly<Record<OpKind, readonly Policy[]>> = {
  set: ['lww'], add: ['set'], remove: ['set'], increment: ['counter'], max: ['max'],
  insert: ['list'], delete: ['lww', 'list'],
};

export function policyFromName(name: string): Policy {
  const policy = POLICIES.find((known) => known === name);
  if (policy === undefined) {
    throw invalid(`unknown policy '${name}' (expected lww, set, list, max or counter)`);
  }
  return policy;
}

function opKindFromName(name: string): OpKind {
  if (Object.hasOwn(OP_FITS, name)) return name as OpKind;
  throw invalid(`unknown op '${name}' (expected set, add, remove, increment, max, insert or ` +
    'delete)');
}

/** Parses a JSON Pointer to a member ("/a/b~1c" -> ["a", "b/c"]); throws for a bad one. */
export function parsePointer(pointer: string): string[] {
  if (!pointer.startsWith('/')) {
    throw invalid(`'${pointer}' is not a JSON Pointer to a member (starts with '/')`);
  }
  if (!isWellFormed(pointer)) throw invalid(`'${pointer}' is not UTF-8`);
  const path = pointer.slice(1).split('/').map((escaped) => {
    if (escaped === '') throw invalid(`'${pointer}' has an empty segment`);
    if (/~(?![01])/.test(escaped)) throw invalid(`'${pointer}': '~' must be followed by 0 or 1`);
    const segment = escaped.replace(/~[01]/g, (escape) => (escape === '~0' ? '~' : '/'));
    if (utf8Length(segment) > PATH_SEGMENT_BYTES_MAX) {
      throw invalid(`'${pointer}' has a segment over ${PATH_SEGMENT_BYTES_MAX} bytes`);
    }
    return segment;
  });
  if (path.length > PATH_SEGMENTS_MAX) {
    throw invalid(`'${pointer}' has more than ${PATH_SEGMENTS_MAX} segments`);
  }
  return path;
}

/** The inverse of parsePointer: escapes '~' and '/'. */
export function formatPointer(path: readonly string[]): string {
  return path.map((segment) => '/' + segment.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

// Whether two policy patterns can match one path or nested paths: one path would then have two
// policies, or a policy's value would contain another policy's path.
function patternsOverlap(a: readonly string[], b: readonly string[]): boolean {
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) {
    if (a[i] !== b[i] && a[i] !== '*' && b[i] !== '*') return false;
  }
  return true;
}

function parseRules(policies: Json | undefined): PolicyRule[] {
  if (!isObject(policies)) throw invalid('schema: "policies" must be an object');
  const pointers = sortedKeys(policies);
  if (pointers.length > SCHEMA_POLICIES_MAX) {
    throw invalid(`schema: more than ${SCHEMA_POLICIES_MAX} policies`);
  }
  const rules: PolicyRule[] = [];
  for (const pointer of pointers) {
    const where = `schema: policy path '${pointer}'`;
    const pattern = withPlace(where, () => parsePointer(pointer));
    if (pattern.some((segment) => /[{}]/.test(segment))) {
      throw invalid(`${where}: placeholders belong in op paths; use '*' here`);
    }
    const name = member(policies, pointer);
    if (typeof name !== 'string') throw invalid(`${where}: the policy must be a string`);
    const policy = withPlace(where, () => policyFromName(name));
    const earlier = rules.find((rule) => patternsOverlap(rule.pattern, pattern));
    if (earlier !== undefined) {
      throw invalid(`schema: policy paths '${earlier.pointer}' and '${pointer}' overlap: ` +
        'every document path is governed by one policy, and policy paths may not nest');
    }
    rules.push({ pointer, pattern, policy });
  }
  return rules;
}

// Runs `parse`, prefixing the message of the VellumError it throws with `where`.
function withPlace<T>(where: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw invalid(`${where}: ${message.replace(/^invalid_argument: /, '')}`);
  }
}

function parseOpSegment(segment: string, where: string): PathSegment {
  if (segment === '*') {
    throw invalid(`${where}: '*' belongs in policy paths; an op path names its segment with a ` +
      'literal or a placeholder such as {participant}');
  }
  if (!/[{}]/.test(segment)) return { kind: 'literal', literal: segment };
  const whole = segment.startsWith('{') && segment.endsWith('}');
  const inner = segment.slice(1, -1);
  if (whole && inner === 'participant') return { kind: 'participant' };
  if (whole && inner.startsWith('payload.')) {
    const fields = splitFields(inner.slice(8));
    if (!fields.includes('')) return { kind: 'payload', fields };
  }
  throw invalid(`${where}: bad placeholder '${segment}' (a placeholder is a whole segment: ` +
    '{participant} or {payload.<field>})');
}

function checkOpKeys(op: Json | undefined, where: string): JsonObject {
  if (!isObject(op)) throw invalid(`${where}: an op must be an object`);
  for (const key of sortedKeys(op)) {
    if (key !== 'op' && key !== 'path' && key !== 'value') {
      throw invalid(`${where}: unknown key '${key}' (expected op, path, value)`);
    }
  }
  if (typeof member(op, 'op') !== 'string') throw invalid(`${where}: "op" must be a string`);
  if (typeof member(op, 'path') !== 'string') throw invalid(`${where}: "path" must be a string`);
  return op;
}

// Binds an op path to the one rule that matches it (a placeholder matches only '*').
function bindOpPath(rules: readonly PolicyRule[], path: readonly PathSegment[], pointer: string,
  where: string): PolicyRule {
  const rule = rules.find((candidate) => candidate.pattern.length === path.length &&
    candidate.pattern.every((pattern, i) => {
      const segment = path[i];
      return pattern === '*' || (segment?.kind === 'literal' && segment.literal === pattern);
    }));
  if (rule === undefined) {
    throw invalid(`${where}: path '${pointer}' matches no policy path (a placeholder matches ` +
      "only a '*' segment)");
  }
  return rule;
}

// Which ops take a value, and whether it may be omitted; a literal value is checked now rather
// than on every event.
function checkOpValueTemplate(kind: OpKind, policy: Policy, value: Json | undefined,
  where: string): void {
  const lwwDelete = kind === 'delete' && policy === 'lww';
  if (lwwDelete && value !== undefined) {
    throw invalid(`${where}: delete on an lww path takes no value`);
  }
  if (value === undefined) {
    if (lwwDelete || kind === 'increment') return;
    throw invalid(`${where}: ${kind} needs a "value"`);
  }
  checkTemplate(value, 0, `${where} value`);
  if (templateHasReferences(value)) return;
  withPlace(where, () => {
    const literal = toStateValue(resolveValue(value, { participant: '', eventId: '',
      payload: {} }), 'value');
    checkOpValue(kind, policy, literal);
  });
}

function parseOp(rules: readonly PolicyRule[], json: Json | undefined, where: string): OpSpec {
  const op = checkOpKeys(json, where);
  const kind = opKindFromName(op.op as string);
  const pointer = op.path as string;
  const segments = withPlace(where, () => parsePointer(pointer));
  const path = segments.map((segment) => parseOpSegment(segment, where));
  const rule = bindOpPath(rules, path, pointer, where);
  if (!OP_FITS[kind].includes(rule.policy)) {
    throw invalid(`${where}: op '${kind}' does not fit path '${pointer}', whose policy is ` +
      `'${rule.policy}'`);
  }
  const value = member(op, 'value');
  checkOpValueTemplate(kind, rule.policy, value, where);
  return { kind, pointer, path, policy: rule.policy, value: value === undefined ? undefined :
    frozenCopy(value) };
}

function checkActionName(name: string): void {
  if (name.length === 0 || utf8Length(name) > ACTION_NAME_BYTES_MAX || !isWellFormed(name)) {
    throw invalid(`schema: action names have 1 to ${ACTION_NAME_BYTES_MAX} bytes`);
  }
  if (name.startsWith('$')) {
    throw invalid(`schema: action '${name}': names starting with '$' are reserved`);
  }
}

function parseActions(rules: readonly PolicyRule[], actions: JsonObject): Map<string, OpSpec[]> {
  const names = sortedKeys(actions);
  if (names.length > SCHEMA_ACTIONS_MAX) {
    throw invalid(`schema: more than ${SCHEMA_ACTIONS_MAX} actions`);
  }
  const parsed = new Map<string, OpSpec[]>();
  for (const name of names) {
    checkActionName(name);
    const where = `schema: action '${name}'`;
    const ops = member(actions, name);
    if (!Array.isArray(ops)) throw invalid(`${where}: must be an array of ops`);
    if (ops.length > ACTION_OPS_MAX) throw invalid(`${where}: more than ${ACTION_OPS_MAX} ops`);
    parsed.set(name, ops.map((op, index) => parseOp(rules, op, `${where} op ${index}`)));
  }
  return parsed;
}

/** An immutable, validated schema; share one between states. */
export class Schema {
  /** The schema document as it was parsed (a frozen copy). */
  readonly json: JsonObject;
  /** The policy rules, by pointer in UTF-8 byte order (the C++ order). */
  readonly rules: readonly PolicyRule[];
  readonly #actions: ReadonlyMap<string, readonly OpSpec[]>;

  private constructor(json: JsonObject, rules: PolicyRule[], actions: Map<string, OpSpec[]>) {
    this.json = json;
    this.rules = rules;
    this.#actions = actions;
  }

  /**
   * Parses and validates a schema document. Throws VellumError('invalid_argument') naming the
   * first mistake: unknown keys, bad pointers, overlapping policy paths, unknown policies or ops,
   * an op that does not fit its path's policy, a path that matches no policy, an unknown "$"
   * reference, a literal value the op cannot take, or an exceeded limit.
   */
  static parse(json: Json): Schema {
    if (!isObject(json)) throw invalid('schema: must be a JSON object');
    for (const key of sortedKeys(json)) {
      if (key !== 'policies' && key !== 'actions') {
        throw invalid(`schema: unknown key '${key}' (expected policies, actions)`);
      }
    }
    const policies = member(json, 'policies');
    const actions = member(json, 'actions');
    if (policies === undefined) throw invalid('schema: "policies" is missing');
    if (!isObject(actions)) throw invalid('schema: "actions" must be an object');
    const rules = parseRules(policies);
    return new Schema(frozenCopy(json) as JsonObject, rules, parseActions(rules, actions));
  }

  hasAction(name: string): boolean {
    return this.#actions.has(name);
  }

  /** The operations of `action`, or undefined when the schema does not declare it. */
  ops(action: string): readonly OpSpec[] | undefined {
    return this.#actions.get(action);
  }

  /** The rule whose pattern matches the concrete `path` (at most one can). */
  match(path: readonly string[]): PolicyRule | undefined {
    return this.rules.find((rule) => rule.pattern.length === path.length &&
      rule.pattern.every((pattern, i) => pattern === '*' || pattern === path[i]));
  }
}
