// SPDX-License-Identifier: Apache-2.0
// The merge metadata of one concrete path (a "slot") per policy, how an op changes it, and the
// document value it renders (docs/api/rooms.md, "Policies and ops"). Each slot keeps a greatest
// or least stamp, a maximum or a sum over the events that addressed its path, and its value is
// rendered from that alone: that is what makes the state a function of the set of events.
import type { Json, JsonObject } from '../types.js';
import { SAFE_INTEGER_MAX, frozen, member } from './json.js';
import { type Stamp, compareStamps, compareWithoutId } from './stamp.js';
import { compareUtf8 } from './text.js';
import type { OpKind, Policy } from './values.js';

interface SlotBase {
  readonly path: readonly string[];
  /** The highest lamport of any event whose op addressed this path. */
  lamportMax: number;
}
export interface LwwSlot extends SlotBase {
  readonly policy: 'lww';
  /** The greatest stamp of every set and delete. */
  winner: Stamp;
  /** undefined: the winner was a delete. */
  value: Json | undefined;
}
export type SetElement = boolean | number | string;
export interface ElementClock {
  readonly element: SetElement;
  readonly add: Stamp | undefined;     // the greatest stamp of the adds
  readonly remove: Stamp | undefined;  // the greatest stamp of the removes
}
export interface SetSlot extends SlotBase {
  readonly policy: 'set';
  /** By elementKey(). Clocks are replaced, never changed, so that copies may share them. */
  elements: Map<string, ElementClock>;
}
export interface ListItem {
  readonly stamp: Stamp;  // the least stamp of the inserts of this id
  readonly item: JsonObject;
}
export interface ListSlot extends SlotBase {
  readonly policy: 'list';
  /** By item id; never holds a tombstoned id. */
  items: Map<string, ListItem>;
  /** Item id -> the least stamp of its deletes. */
  tombstones: Map<string, Stamp>;
}
export interface MaxSlot extends SlotBase {
  readonly policy: 'max';
  value: number;
  /** The least stamp among the events that wrote the highest value. */
  winner: Stamp;
}
export interface CounterSlot extends SlotBase {
  readonly policy: 'counter';
  /** The exact sum (the document shows it clamped). */
  sum: bigint;
}
export type Slot = LwwSlot | SetSlot | ListSlot | MaxSlot | CounterSlot;

/** What one op did: took effect, or lost to the event `winner`. */
export type OpEffect = { tookEffect: true } | { tookEffect: false; winner: string };

const TOOK_EFFECT: OpEffect = { tookEffect: true };

function lostTo(winner: Stamp): OpEffect {
  return { tookEffect: false, winner: winner.id };
}

/** A slot no op has changed yet. `stamp` only fills the winner that the first op replaces. */
export function emptySlot(policy: Policy, path: readonly string[], stamp: Stamp): Slot {
  switch (policy) {
    case 'lww':
      return { policy, path, lamportMax: 0, winner: stamp, value: undefined };
    case 'set':
      return { policy, path, lamportMax: 0, elements: new Map() };
    case 'list':
      return { policy, path, lamportMax: 0, items: new Map(), tombstones: new Map() };
    case 'max':
      return { policy, path, lamportMax: 0, value: 0, winner: stamp };
    case 'counter':
      return { policy, path, lamportMax: 0, sum: 0n };
  }
}

/** A copy that can be changed without changing `slot` (the immutable parts are shared). */
export function copySlot(slot: Slot): Slot {
  switch (slot.policy) {
    case 'set':
      return { ...slot, elements: new Map(slot.elements) };
    case 'list':
      return { ...slot, items: new Map(slot.items), tombstones: new Map(slot.tombstones) };
    default:
      return { ...slot };
  }
}

export function applyLww(slot: LwwSlot, created: boolean, stamp: Stamp,
  value: Json | undefined): OpEffect {
  if (!created && compareStamps(slot.winner, stamp) > 0) return lostTo(slot.winner);
  slot.winner = stamp;
  slot.value = value;
  return TOOK_EFFECT;
}

export function applyMax(slot: MaxSlot, created: boolean, stamp: Stamp, value: number): OpEffect {
  if (!created && (slot.value > value ||
      (slot.value === value && compareStamps(slot.winner, stamp) < 0))) {
    return lostTo(slot.winner);
  }
  slot.value = value;
  slot.winner = stamp;
  return TOOK_EFFECT;
}

/** Set elements are told apart by type too: 1 and "1" are two elements. */
export function elementKey(element: SetElement): string {
  return (typeof element === 'boolean' ? 'b' : typeof element === 'number' ? 'i' : 's') +
    String(element);
}

function greater(a: Stamp | undefined, b: Stamp): Stamp {
  return a === undefined || compareStamps(a, b) < 0 ? b : a;
}

// Both clocks always advance to the greatest stamp, whether or not the op wins: the clocks must
// not depend on the order in which adds and removes arrive.
export function applySet(slot: SetSlot, kind: OpKind, stamp: Stamp, element: SetElement):
  OpEffect {
  const key = elementKey(element);
  const clock = slot.elements.get(key) ?? { element, add: undefined, remove: undefined };
  if (kind === 'add') {
    slot.elements.set(key, { ...clock, add: greater(clock.add, stamp) });
    const remove = clock.remove;
    return remove !== undefined && compareWithoutId(remove, stamp) > 0 ? lostTo(remove) :
      TOOK_EFFECT;
  }
  slot.elements.set(key, { ...clock, remove: greater(clock.remove, stamp) });
  const add = clock.add;
  return add !== undefined && compareWithoutId(add, stamp) >= 0 ? lostTo(add) : TOOK_EFFECT;
}

export function applyList(slot: ListSlot, kind: OpKind, stamp: Stamp, value: Json): OpEffect {
  if (kind === 'insert') {
    const item = value as JsonObject;
    const id = member(item, 'id') as string;
    const tombstone = slot.tombstones.get(id);
    if (tombstone !== undefined) return lostTo(tombstone);
    const existing = slot.items.get(id);
    // The first insert of an id keeps it.
    if (existing !== undefined && compareStamps(existing.stamp, stamp) < 0) {
      return lostTo(existing.stamp);
    }
    slot.items.set(id, { stamp, item });
    return TOOK_EFFECT;
  }
  const id = value as string;
  const tombstone = slot.tombstones.get(id);
  if (tombstone !== undefined && compareStamps(tombstone, stamp) < 0) return lostTo(tombstone);
  slot.tombstones.set(id, stamp);
  slot.items.delete(id);  // tombstones win over every insert, earlier or later
  return TOOK_EFFECT;
}

/** Whether an element is in the set: an add, and no remove with a greater (untied) stamp. */
export function elementPresent(clock: ElementClock): boolean {
  return clock.add !== undefined &&
    (clock.remove === undefined || compareWithoutId(clock.add, clock.remove) >= 0);
}

function elementRank(element: SetElement): number {
  return typeof element === 'boolean' ? 0 : typeof element === 'number' ? 1 : 2;
}

/** Set order: false, true, then integers ascending, then strings by UTF-8 bytes. */
export function compareElements(a: SetElement, b: SetElement): number {
  const rank = elementRank(a) - elementRank(b);
  if (rank !== 0) return rank;
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b);
  return Number(a) - Number(b);
}

/** The clocks of a set in element order (the document's and the snapshot's). */
export function sortedClocks(slot: SetSlot): ElementClock[] {
  return [...slot.elements.values()].sort((a, b) => compareElements(a.element, b.element));
}

// List order: (lamport, participant, item id) of the items' stamps; server time is not part of
// it, so that an item keeps its place whatever the server's clock did.
function compareItems(a: [string, ListItem], b: [string, ListItem]): number {
  return a[1].stamp.lamport - b[1].stamp.lamport ||
    compareUtf8(a[1].stamp.participant, b[1].stamp.participant) || compareUtf8(a[0], b[0]);
}

function clampToSafe(sum: bigint): number {
  const limit = BigInt(SAFE_INTEGER_MAX);
  return Number(sum > limit ? limit : sum < -limit ? -limit : sum);
}

/** The document value of a slot (frozen); undefined for a deleted lww register. */
export function renderValue(slot: Slot): Json | undefined {
  switch (slot.policy) {
    case 'lww':
      return slot.value;
    case 'set':
      return frozen(sortedClocks(slot).filter(elementPresent).map((clock) => clock.element));
    case 'list':
      return frozen([...slot.items.entries()].sort(compareItems).map(([, item]) => item.item));
    case 'max':
      return slot.value;
    case 'counter':
      return clampToSafe(slot.sum);
  }
}
