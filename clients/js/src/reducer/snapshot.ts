// SPDX-License-Identifier: Apache-2.0
// Slots in the snapshot format, version 1 (docs/api/rooms.md, "Snapshots"; the C++ is
// src/rooms/snapshot.cc). A snapshot comes from storage or the network, so reading one checks
// every field: bad input throws VellumError('invalid_argument'), and a slot whose path has
// another policy in the schema throws VellumError('failed_precondition').
import { type Json, type JsonObject, VellumError } from '../types.js';
import { isInteger, isObject, isSafeUnsigned, member, setMember, toStateValue } from './json.js';
import {
  type ElementClock, type ListSlot, type SetSlot, type Slot, elementKey, sortedClocks,
} from './slots.js';
import { optionalStampFromJson, parseDecimal, stampFromJson, stampToJson } from './stamp.js';
import { invalid, isWellFormed, sortedKeys } from './text.js';
import { type Policy, checkOpValue } from './values.js';
import { policyFromName } from './schema.js';

export function slotToJson(slot: Slot): JsonObject {
  const json: JsonObject = { policy: slot.policy, lamportMax: slot.lamportMax };
  switch (slot.policy) {
    case 'lww':
      json.winner = stampToJson(slot.winner);
      if (slot.value !== undefined) json.value = slot.value;
      break;
    case 'set':
      json.elements = sortedClocks(slot).map((clock) => [clock.element,
        clock.add === undefined ? null : stampToJson(clock.add),
        clock.remove === undefined ? null : stampToJson(clock.remove)]);
      break;
    case 'list': {
      const items: JsonObject = {};
      const tombstones: JsonObject = {};
      for (const [id, item] of slot.items) {
        setMember(items, id, { stamp: stampToJson(item.stamp), item: item.item });
      }
      for (const [id, stamp] of slot.tombstones) setMember(tombstones, id, stampToJson(stamp));
      json.items = items;
      json.tombstones = tombstones;
      break;
    }
    case 'max':
      json.value = slot.value;
      json.winner = stampToJson(slot.winner);
      break;
    case 'counter':
      json.sum = slot.sum.toString();
      break;
  }
  return json;
}

// The members of one snapshot object, naming it in every error.
class Fields {
  constructor(readonly json: JsonObject, readonly where: string) {}

  static of(json: Json | undefined, where: string): Fields {
    if (!isObject(json)) throw invalid(`${where}: must be an object`);
    return new Fields(json, where);
  }
  member(name: string): Json {
    const value = member(this.json, name);
    if (value === undefined) throw invalid(`${this.where}: "${name}" is missing`);
    return value;
  }
  safeUnsigned(name: string): number {
    const value = this.member(name);
    if (!isSafeUnsigned(value)) {
      throw invalid(`${this.where}: "${name}" must be an integer from 0 to 2^53 - 1`);
    }
    return value;
  }
  string(name: string): string {
    const value = this.member(name);
    if (typeof value !== 'string') throw invalid(`${this.where}: "${name}" must be a string`);
    return value;
  }
}

export { Fields as SnapshotFields };

function setFromJson(fields: Fields, path: readonly string[], lamportMax: number): SetSlot {
  const elements = fields.member('elements');
  if (!Array.isArray(elements)) throw invalid(`${fields.where}: "elements" must be an array`);
  const slot: SetSlot = { policy: 'set', path, lamportMax, elements: new Map() };
  for (const entry of elements) {
    const where = `${fields.where} element`;
    if (!Array.isArray(entry) || entry.length !== 3) {
      throw invalid(`${where}: must be [element, addStamp|null, removeStamp|null]`);
    }
    const element = toStateValue(entry[0], where);
    checkOpValue('add', 'set', element);
    const clock = { element, add: optionalStampFromJson(entry[1], where),
      remove: optionalStampFromJson(entry[2], where) } as ElementClock;
    if (clock.add === undefined && clock.remove === undefined) {
      throw invalid(`${where}: has neither an add nor a remove`);
    }
    const key = elementKey(clock.element);
    if (slot.elements.has(key)) throw invalid(`${where}: listed twice`);
    slot.elements.set(key, clock);
  }
  return slot;
}

function listFromJson(fields: Fields, path: readonly string[], lamportMax: number): ListSlot {
  const items = fields.member('items');
  const tombstones = fields.member('tombstones');
  if (!isObject(items) || !isObject(tombstones)) {
    throw invalid(`${fields.where}: "items" and "tombstones" must be objects`);
  }
  const slot: ListSlot = { policy: 'list', path, lamportMax, items: new Map(),
    tombstones: new Map() };
  for (const id of sortedKeys(items)) {
    const itemFields = Fields.of(member(items, id), `${fields.where} item '${id}'`);
    const stamp = stampFromJson(itemFields.member('stamp'), itemFields.where);
    const item = toStateValue(itemFields.member('item'), itemFields.where);
    checkOpValue('insert', 'list', item);
    if (member(item as JsonObject, 'id') !== id) {
      throw invalid(`${itemFields.where}: its "id" differs`);
    }
    slot.items.set(id, { stamp, item: item as JsonObject });
  }
  for (const id of sortedKeys(tombstones)) {
    const stamp = stampFromJson(member(tombstones, id), `${fields.where} tombstone`);
    if (!isWellFormed(id)) throw invalid(`${fields.where}: tombstone id is not UTF-8`);
    if (slot.items.has(id)) {
      throw invalid(`${fields.where}: item '${id}' is both present and deleted`);
    }
    slot.tombstones.set(id, stamp);
  }
  return slot;
}

function policyData(fields: Fields, policy: Policy, path: readonly string[],
  lamportMax: number): Slot {
  switch (policy) {
    case 'lww': {
      const winner = stampFromJson(fields.member('winner'), `${fields.where} winner`);
      const value = member(fields.json, 'value');
      return { policy, path, lamportMax, winner,
        value: value === undefined ? undefined : toStateValue(value, `${fields.where} value`) };
    }
    case 'set':
      return setFromJson(fields, path, lamportMax);
    case 'list':
      return listFromJson(fields, path, lamportMax);
    case 'max': {
      const value = fields.member('value');
      if (!isInteger(value) || !Number.isSafeInteger(value)) {
        throw invalid(`${fields.where}: "value" must be an integer within ±(2^53 - 1)`);
      }
      const winner = stampFromJson(fields.member('winner'), `${fields.where} winner`);
      return { policy, path, lamportMax, value, winner };
    }
    case 'counter':
      return { policy, path, lamportMax, sum: parseDecimal(fields.member('sum'),
        `${fields.where} sum`) };
  }
}

/** Reads one slot of a snapshot, whose path has policy `expected` in the current schema. */
export function slotFromJson(json: Json | undefined, where: string, path: readonly string[],
  expected: Policy): Slot {
  const fields = Fields.of(json, where);
  const policyText = fields.string('policy');
  const policy = policyFromName(policyText);
  if (policy !== expected) {
    throw new VellumError('failed_precondition',
      `${where}: the snapshot has policy '${policyText}', the schema '${expected}'`);
  }
  return policyData(fields, policy, path, fields.safeUnsigned('lamportMax'));
}
