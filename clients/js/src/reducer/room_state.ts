// SPDX-License-Identifier: Apache-2.0
// The room-state reducer: folds committed room events into a JSON document under the merge
// policies of the app's schema, and reports each event's outcome. A port of the C++
// src/rooms/reducer.cc that must produce byte-identical state (docs/api/rooms.md; pinned by
// spec/rooms/vectors/). The state is a function of the *set* of events applied, whatever the
// order; only outcomes depend on the order (they are defined for commit order).
//
// Copies are cheap because they share: values in state are frozen, and a slot or a document
// object is copied only when a state changes one it does not own (copy on write). The optimistic
// view clones the confirmed state on every rebase.
import { type Json, type JsonObject, type Outcome, VellumError } from '../types.js';
import {
  canonicalJson, isInteger, isObject, isSafeUnsigned, jsonEqual, member,
  setMember, sha256Hex, toStateValue,
} from './json.js';
import { type OpSpec, Schema, formatPointer, parsePointer } from './schema.js';
import {
  type OpEffect, type SetElement, type Slot, applyList, applyLww, applyMax, applySet, copySlot,
  emptySlot, renderValue,
} from './slots.js';
import { SnapshotFields, slotFromJson, slotToJson } from './snapshot.js';
import { type Stamp, parseServerTime } from './stamp.js';
import { compareUtf8, invalid, isWellFormed, sortedKeys, utf8Length } from './text.js';
import { ITEM_ID_BYTES_MAX, checkOpValue, payloadField, resolveValue } from './values.js';

/** A committed room event as the reducer reads it (docs/api/rooms.md, "Room events"). */
export interface ReducerEvent {
  seq: number;
  id: string;
  action: string;
  /** Missing means {}. */
  payload?: Json;
  lamport: number;
  participant: string;
  /** Nanoseconds since the Unix epoch: a decimal string or a BigInt (it exceeds 2^53). */
  serverTime: string | bigint;
}

export const SNAPSHOT_VERSION = 1;
export const EVENT_ID_BYTES_MAX = 128;
export const PARTICIPANT_BYTES_MAX = 256;
const ACTION_NAME_BYTES_MAX = 128;
const PATH_SEGMENT_BYTES_MAX = ITEM_ID_BYTES_MAX;
// Integers nlohmann reads as integers (int64 or uint64); larger ones are floats there.
const INTEGER_TEXT_MIN = -(2 ** 63);
const INTEGER_TEXT_LIMIT = 2 ** 64;

// One op of an event, resolved before any op is applied, so that an event that fails changes
// nothing.
interface PlannedOp {
  readonly spec: OpSpec;
  readonly path: readonly string[];
  readonly pointer: string;
  readonly value: Json | undefined;
  /** Whether an event the sender had not seen had addressed this path before this event. */
  concurrent: boolean;
}

function checkText(text: unknown, bytesMax: number, what: string): string {
  if (typeof text !== 'string' || text.length === 0 || utf8Length(text) > bytesMax ||
      !isWellFormed(text)) {
    throw invalid(`event ${what} must be 1 to ${bytesMax} bytes of UTF-8`);
  }
  return text;
}

// The stamp of a well-formed event; throws for a malformed one.
function checkEvent(event: ReducerEvent): Stamp {
  const id = checkText(event.id, EVENT_ID_BYTES_MAX, 'id');
  const participant = checkText(event.participant, PARTICIPANT_BYTES_MAX, 'participant');
  checkText(event.action, ACTION_NAME_BYTES_MAX, 'action');
  if (!isSafeUnsigned(event.lamport) || !isSafeUnsigned(event.seq)) {
    throw invalid('event lamport and seq must be integers from 0 to 2^53 - 1');
  }
  const serverTime = parseServerTime(event.serverTime, 'event serverTime');
  return { lamport: event.lamport, serverTime, participant, id };
}

// The decimal text of an integer payload field, as the C++ writes it (exact for every integer
// the JSON text held exactly).
function integerSegment(value: number): string {
  if (value >= INTEGER_TEXT_MIN && value < INTEGER_TEXT_LIMIT) return BigInt(value).toString();
  throw invalid('the payload field behind a path placeholder is beyond the 64-bit range');
}

// The segment an op path segment resolves to: a literal, the participant, or a payload field
// that is an integer (in decimal) or a 1-256 byte string.
function resolveSegment(spec: OpSpec, index: number, event: ReducerEvent, payload: Json): string {
  const segment = spec.path[index];
  if (segment === undefined || segment.kind === 'literal') return segment?.literal ?? '';
  if (segment.kind === 'participant') return event.participant;
  const field = payloadField(payload, segment.fields);
  if (isInteger(field)) return integerSegment(field);
  if (typeof field === 'string' && field.length > 0 &&
      utf8Length(field) <= PATH_SEGMENT_BYTES_MAX && isWellFormed(field)) {
    return field;
  }
  throw invalid('the payload field behind a path placeholder must be an integer or a string ' +
    `of 1 to ${PATH_SEGMENT_BYTES_MAX} bytes`);
}

function planOp(spec: OpSpec, event: ReducerEvent, payload: Json): PlannedOp {
  const path = spec.path.map((_, index) => resolveSegment(spec, index, event, payload));
  const pointer = formatPointer(path);
  let value: Json | undefined = spec.kind === 'increment' ? 1 : undefined;
  if (spec.value !== undefined) {
    const what = `action '${event.action}': ${spec.kind} ${pointer}`;
    const resolved = resolveValue(spec.value, { participant: event.participant,
      eventId: event.id, payload });
    value = toStateValue(resolved, what);
    try {
      checkOpValue(spec.kind, spec.policy, value);
    } catch (error) {
      throw invalid(`${what}: ${(error as Error).message.replace(/^invalid_argument: /, '')}`);
    }
  }
  return { spec, path, pointer, value, concurrent: false };
}

// An event's outcome from its ops': superseded when every op lost, merged when some op merged or
// lost while another took effect, applied otherwise (an action without ops is applied).
function combineOutcomes(outcomes: readonly Outcome[]): Outcome {
  const first = outcomes[0];
  if (first !== undefined && outcomes.every((outcome) => outcome.outcome === 'superseded')) {
    return first;
  }
  return outcomes.some((outcome) => outcome.outcome !== 'applied') ? { outcome: 'merged' } :
    { outcome: 'applied' };
}

/**
 * The state of one room: its document and the merge metadata that makes the document a
 * function of the event set. Created empty or restored from a snapshot; changed only by apply().
 * The documents it hands out are frozen and never change afterwards.
 */
export class RoomState {
  readonly #schema: Schema;
  #slots: Map<string, Slot>;
  #document: JsonObject;
  #seqMax = 0;
  #lamportMax = 0;
  // Copy on write: the slots and document objects this state may change in place. Everything
  // else may be shared with clones (and, for document objects, with callers: they are frozen).
  #ownedSlots = new Set<Slot>();
  #ownedNodes = new Set<JsonObject>();
  #hash: string | undefined;

  private constructor(schema: Schema, slots: Map<string, Slot>, document: JsonObject) {
    this.#schema = schema;
    this.#slots = slots;
    this.#document = document;
  }

  static create(schema: Schema): RoomState {
    const state = new RoomState(schema, new Map(), {});
    state.#document = state.#newNode();
    return state;
  }

  get schema(): Schema {
    return this.#schema;
  }

  /** The highest seq applied (0 if none). */
  get seqMax(): number {
    return this.#seqMax;
  }

  /** The highest lamport applied (0 if none). */
  get lamportMax(): number {
    return this.#lamportMax;
  }

  /**
   * Applies one committed event and returns its outcome. The caller applies each event at most
   * once (a counter is not idempotent). Throws VellumError('invalid_argument') for an unknown
   * action, a payload that lacks a referenced field or holds a value the op cannot take, or a
   * malformed event; the state is then unchanged. Such errors depend only on the schema and the
   * event, so an event fails the same way on every replica.
   */
  apply(event: ReducerEvent): Outcome {
    const stamp = checkEvent(event);
    const specs = this.#schema.ops(event.action);
    if (specs === undefined) throw invalid(`unknown action '${event.action}'`);
    const payload = event.payload === undefined ? {} : event.payload;
    const plan = specs.map((spec) => planOp(spec, event, payload));
    // Concurrency is judged against the state the event met, before any of its own ops.
    for (const op of plan) {
      const slot = this.#slots.get(op.pointer);
      op.concurrent = slot !== undefined && slot.lamportMax >= stamp.lamport;
    }
    const outcomes = plan.map((op) => this.#applyOp(op, stamp));
    this.#seqMax = Math.max(this.#seqMax, event.seq);
    this.#lamportMax = Math.max(this.#lamportMax, stamp.lamport);
    this.#hash = undefined;
    return combineOutcomes(outcomes);
  }

  /** A copy that changes independently (copy on write: cheap until either side changes). */
  clone(): RoomState {
    this.#publish();
    this.#ownedSlots = new Set();
    const copy = new RoomState(this.#schema, new Map(this.#slots), this.#document);
    copy.#seqMax = this.#seqMax;
    copy.#lamportMax = this.#lamportMax;
    copy.#hash = this.#hash;
    return copy;
  }

  /** The room document (frozen). Paths never written are absent. */
  document(): JsonObject {
    this.#publish();
    return this.#document;
  }

  /** canonicalJson(document()). */
  canonicalDocument(): string {
    return canonicalJson(this.document());
  }

  /** The full state as a snapshot, version 1 (docs/api/rooms.md, "Snapshots"). */
  toJSON(): JsonObject {
    const slots: JsonObject = {};
    for (const pointer of [...this.#slots.keys()].sort(compareUtf8)) {
      setMember(slots, pointer, slotToJson(this.#slots.get(pointer) as Slot));
    }
    return { version: SNAPSHOT_VERSION, seqMax: this.#seqMax, lamportMax: this.#lamportMax,
      document: this.document(), slots };
  }

  /** Lowercase hex SHA-256 of canonicalJson(toJSON()): equal on every replica that applied
   * the same events. */
  stateHash(): string {
    this.#hash ??= sha256Hex(canonicalJson(this.toJSON()));
    return this.#hash;
  }

  /**
   * Restores a snapshot (toJSON() format) taken under a compatible schema. Throws
   * VellumError('invalid_argument') for a malformed snapshot or one whose document does not
   * match its metadata, and VellumError('failed_precondition') when a slot's path no longer has
   * the same policy in `schema`.
   */
  static fromJSON(schema: Schema, snapshot: Json): RoomState {
    const fields = SnapshotFields.of(snapshot, 'snapshot');
    const version = fields.safeUnsigned('version');
    if (version !== SNAPSHOT_VERSION) {
      throw invalid(`snapshot: version ${version} (this reader knows ${SNAPSHOT_VERSION})`);
    }
    const state = RoomState.create(schema);
    state.#seqMax = fields.safeUnsigned('seqMax');
    state.#lamportMax = fields.safeUnsigned('lamportMax');
    const document = fields.member('document');
    const slots = fields.member('slots');
    if (!isObject(slots)) throw invalid('snapshot: "slots" must be an object');
    for (const pointer of sortedKeys(slots)) {
      state.#restoreSlot(pointer, member(slots, pointer));
    }
    // The document is derived from the slots; a snapshot whose two halves disagree is damaged.
    if (!jsonEqual(document, state.#document)) {
      throw invalid('snapshot: the document does not match the merge metadata');
    }
    return state;
  }

  #restoreSlot(pointer: string, json: Json | undefined): void {
    const where = `snapshot: slot '${pointer}'`;
    let path: string[];
    try {
      path = parsePointer(pointer);
    } catch (error) {
      throw invalid(`${where}: ${(error as Error).message.replace(/^invalid_argument: /, '')}`);
    }
    const rule = this.#schema.match(path);
    if (rule === undefined) {
      throw new VellumError('failed_precondition',
        `${where}: the schema declares no policy for this path`);
    }
    const slot = slotFromJson(json, where, path, rule.policy);
    this.#slots.set(pointer, slot);
    this.#ownedSlots.add(slot);
    this.#render(slot);
  }

  #applyOp(op: PlannedOp, stamp: Stamp): Outcome {
    const existing = this.#slots.get(op.pointer);
    const slot = existing === undefined ? emptySlot(op.spec.policy, op.path, stamp) :
      this.#ownedSlots.has(existing) ? existing : copySlot(existing);
    if (slot !== existing) {
      this.#slots.set(op.pointer, slot);
      this.#ownedSlots.add(slot);
    }
    slot.lamportMax = Math.max(slot.lamportMax, stamp.lamport);
    const effect = this.#changeSlot(slot, existing === undefined, op, stamp);
    this.#render(slot);
    if (!effect.tookEffect) return { outcome: 'superseded', by: effect.winner };
    // A register is replaced, never combined: a winning lww write is simply applied.
    return op.concurrent && slot.policy !== 'lww' ? { outcome: 'merged' } : { outcome: 'applied' };
  }

  #changeSlot(slot: Slot, created: boolean, op: PlannedOp, stamp: Stamp): OpEffect {
    if (slot.policy !== op.spec.policy) {
      // Policy paths never overlap (Schema.parse), so a path has one policy for ever.
      throw new Error(`bug: slot ${op.pointer} is ${slot.policy}, op ${op.spec.policy}`);
    }
    const value = op.value as Json;
    switch (slot.policy) {
      case 'lww':
        return applyLww(slot, created, stamp, op.spec.kind === 'set' ? value : undefined);
      case 'set':
        return applySet(slot, op.spec.kind, stamp, value as SetElement);
      case 'list':
        return applyList(slot, op.spec.kind, stamp, value);
      case 'max':
        return applyMax(slot, created, stamp, value as number);
      case 'counter':
        slot.sum += BigInt(value as number);
        return { tookEffect: true };
    }
  }

  // Writes (or, for a deleted register, erases) a slot's value at its path, creating the objects
  // on the way. Those objects stay when the value is erased, so the document is the same whether
  // it was rendered op by op (apply) or slot by slot (fromJSON).
  #render(slot: Slot): void {
    const value = renderValue(slot);
    let node = this.#own(this.#document);
    this.#document = node;
    const last = slot.path.length - 1;
    for (let i = 0; i < last; i++) {
      const segment = slot.path[i] as string;
      const child = member(node, segment);
      // Policy paths never nest, so only objects this reducer made lie on the way.
      const next = isObject(child) ? this.#own(child) : this.#newNode();
      if (next !== child) setMember(node, segment, next);
      node = next;
    }
    const leaf = slot.path[last] as string;
    if (value === undefined) {
      delete node[leaf];
    } else {
      setMember(node, leaf, value);
    }
  }

  // `node` if this state owns it, else an owned copy (the caller links it in place of `node`).
  #own(node: JsonObject): JsonObject {
    if (this.#ownedNodes.has(node)) return node;
    const copy = { ...node };
    this.#ownedNodes.add(copy);
    return copy;
  }

  #newNode(): JsonObject {
    const node: JsonObject = {};
    this.#ownedNodes.add(node);
    return node;
  }

  // Freezes the document objects this state changed, which makes the whole document immutable
  // and shareable; the next change copies the objects on its path.
  #publish(): void {
    for (const node of this.#ownedNodes) Object.freeze(node);
    this.#ownedNodes.clear();
  }
}
