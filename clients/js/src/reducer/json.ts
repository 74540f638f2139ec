// SPDX-License-Identifier: Apache-2.0
// JSON values as room state holds them: the checks every value passes before it enters state,
// the canonical serialization every replica hashes, and the small helpers that keep plain
// objects safe to use as maps (a member named "__proto__" or "constructor" is just a member).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

import type { Json, JsonObject } from '../types.js';
import { compareUtf8, invalid, isWellFormed } from './text.js';

/** Integers in room state are what a JavaScript number holds exactly: |n| <= 2^53 - 1. */
export const SAFE_INTEGER_MAX = Number.MAX_SAFE_INTEGER;
/** Nesting of values that enter state (and of value templates). */
export const VALUE_DEPTH_MAX = 64;
/** Path segments of a policy or op path (also bounds the snapshot's nesting, below). */
export const PATH_SEGMENTS_MAX = 16;
// A snapshot nests values under their paths and its own few levels (as the C++ allows).
const CANONICAL_DEPTH_MAX = VALUE_DEPTH_MAX + PATH_SEGMENTS_MAX + 8;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The own member `key` of `object`, never an inherited property such as `constructor`. */
export function member(object: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** Sets an own member; plain assignment to "__proto__" would replace the prototype instead. */
export function setMember(object: JsonObject, key: string, value: Json): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true,
      configurable: true });
  } else {
    object[key] = value;
  }
}

/** Whether `value` is a JSON integer (what nlohmann's is_number_integer accepts). */
export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** An integer from 0 to 2^53 - 1 (the C++ reads these as unsigned: -0 is not one). */
export function isSafeUnsigned(value: unknown): value is number {
  return isInteger(value) && value >= 0 && !Object.is(value, -0) && value <= SAFE_INTEGER_MAX;
}

/** Freezes `value` in place and returns it with its mutable type (JSON types are mutable). */
export function frozen<T extends Json>(value: T): T {
  Object.freeze(value);
  return value;
}

/**
 * Checks that `value` may enter room state (integers within ±(2^53 - 1) and no other numbers,
 * well-formed strings and keys, nesting <= `depthMax`) and returns a deep copy that is frozen,
 * so that states, their clones and the documents they hand out can share it. As on the wire, a
 * member whose value is `undefined` is left out and an `undefined` array element becomes null.
 */
export function toStateValue(value: unknown, what: string, depthMax = VALUE_DEPTH_MAX): Json {
  return copyChecked(value, what, depthMax, 0);
}

function copyChecked(value: unknown, what: string, depthMax: number, depth: number): Json {
  if (depth > depthMax) throw invalid(`${what}: nested too deeply`);
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      throw invalid(`${what}: numbers in room state are integers (use integer units such as ` +
        'meters or cents)');
    }
    if (Math.abs(value) > SAFE_INTEGER_MAX) throw invalid(`${what}: integer beyond ±(2^53 - 1)`);
    return value;
  }
  if (typeof value === 'string') {
    if (!isWellFormed(value)) throw invalid(`${what}: string is not UTF-8`);
    return value;
  }
  if (Array.isArray(value)) {
    const copy = value.map((child: unknown) =>
      copyChecked(child === undefined ? null : child, what, depthMax, depth + 1));
    return frozen(copy);
  }
  if (typeof value === 'object') {
    const copy: JsonObject = {};
    for (const [key, child] of Object.entries(value)) {
      if (child === undefined) continue;
      if (!isWellFormed(key)) throw invalid(`${what}: key is not UTF-8`);
      setMember(copy, key, copyChecked(child, what, depthMax, depth + 1));
    }
    return frozen(copy);
  }
  throw invalid(`${what}: not a JSON value (${typeof value})`);
}

/** A frozen deep copy of any JSON value, unchecked (the schema as it was given). */
export function frozenCopy(value: Json): Json {
  if (Array.isArray(value)) return frozen(value.map(frozenCopy));
  if (!isObject(value)) return value;
  const copy: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    if (child !== undefined) setMember(copy, key, frozenCopy(child));
  }
  return frozen(copy);
}

/** Deep equality of JSON values (nlohmann's operator==: members in any order). */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length &&
      a.every((child, index) => jsonEqual(child, b[index]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
}

/**
 * The canonical serialization every replica hashes and compares (docs/api/rooms.md,
 * "Document"): object keys sorted by their UTF-8 bytes (not by UTF-16 units), no whitespace,
 * integers as integers, strings escaped as JSON.stringify does. Throws
 * VellumError('invalid_argument') for a non-integer number or an integer beyond ±(2^53 - 1)
 * (their text differs between C++ and JavaScript), a string that is not UTF-8, or nesting
 * deeper than a snapshot can be: exactly what the C++ canonical_json refuses.
 */
export function canonicalJson(value: Json): string {
  const parts: string[] = [];
  writeCanonical(value, 0, parts);
  return parts.join('');
}

function writeCanonical(value: unknown, depth: number, parts: string[]): void {
  if (depth > CANONICAL_DEPTH_MAX) throw invalid('canonical JSON: nested too deeply');
  if (Array.isArray(value)) {
    parts.push('[');
    value.forEach((child: unknown, index) => {
      if (index > 0) parts.push(',');
      writeCanonical(child === undefined ? null : child, depth + 1, parts);
    });
    parts.push(']');
  } else if (isObject(value)) {
    parts.push('{');
    let first = true;
    for (const key of Object.keys(value).sort(compareUtf8)) {
      const child = value[key];
      if (child === undefined) continue;
      if (!isWellFormed(key)) throw invalid('canonical JSON: key is not UTF-8');
      parts.push(first ? '' : ',', JSON.stringify(key), ':');
      first = false;
      writeCanonical(child, depth + 1, parts);
    }
    parts.push('}');
  } else {
    // Scalars: the state checks are the canonical checks (and 0 is written for -0, as in C++).
    parts.push(JSON.stringify(copyChecked(value, 'canonical JSON', 0, 0)));
  }
}

const utf8 = new TextEncoder();

/** Lowercase hex SHA-256 of the UTF-8 bytes of `text`. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8.encode(text)));
}
