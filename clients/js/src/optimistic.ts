// SPDX-License-Identifier: Apache-2.0
// The optimistic state of one room for one participant: the confirmed state (the server's,
// folded from committed events in seq order) plus the participant's own actions that the server
// has not answered yet. The view shows the pending actions at once, applied over the confirmed
// state; each committed event rebases them. An own action's echo or answer turns it into its one
// ActionResult, and a superseded or rejected one into a Conflict (seed 002's notice).
//
// Pending actions are applied with a stamp that sorts after every committed event of their
// lamport (server time 2^63 - 1): the server stamps them later than anything committed now. A
// pending action that a newer committed event beats is therefore already beaten in the view,
// so a stale write never shows and then flips back (docs/api/rooms.md, "Policies and ops").
import { type ReducerEvent, RoomState, type Schema } from './reducer/index.js';
import {
  type ActionResult, type Conflict, type Json, type JsonObject, type Outcome, type PendingAction,
  type RoomEvent, VellumError,
} from './types.js';

/** How many recent events' participants are kept to name the winner of a conflict. */
export const RECENT_EVENTS_MAX = 10_000;
// The greatest server time: pending actions sort after every committed event of their lamport.
const PENDING_SERVER_TIME = 2n ** 63n - 1n;

type CommittedOutcome = 'applied' | 'merged' | 'superseded';

interface PendingEntry {
  readonly action: PendingAction;
  /**
   * Set when the server's answer came before the committed event (the result is reported
   * already): the action stays in the view until its event arrives, then leaves silently.
   */
  answeredSeq?: number;
}

function isVellumError(error: unknown): error is VellumError {
  return error instanceof VellumError;
}

// The payload as the server will read it: what JSON drops or changes is dropped here too.
function asSent(payload: JsonObject): JsonObject {
  try {
    return JSON.parse(JSON.stringify(payload)) as JsonObject;
  } catch (error) {
    throw new VellumError('invalid_argument', `the payload is not JSON: ${String(error)}`);
  }
}

function resultOf(action: PendingAction, seq: number, outcome: CommittedOutcome,
  by: string | undefined): ActionResult {
  if (outcome === 'superseded') {
    return { id: action.id, action: action.action, status: 'superseded', seq, by: by ?? '' };
  }
  return { id: action.id, action: action.action, status: outcome, seq };
}

export class OptimisticRoom {
  #schema: Schema;
  readonly #participant: string;
  #confirmed: RoomState;
  #confirmedSeq = 0;
  #clock = 0;
  #entries: PendingEntry[] = [];
  // Event id -> participant of recent committed events, oldest first (Map keeps insertion order).
  readonly #recent = new Map<string, string>();
  // The confirmed state with the pending actions applied, and its document: cached until
  // something changes. A new pending action is applied to the cached state in place.
  #viewState: RoomState | undefined;
  #viewDocument: JsonObject | undefined;
  readonly #listeners = new Set<() => void>();

  constructor(schema: Schema, participant: string) {
    this.#schema = schema;
    this.#participant = participant;
    this.#confirmed = RoomState.create(schema);
  }

  get schema(): Schema {
    return this.#schema;
  }

  get participant(): string {
    return this.#participant;
  }

  /** The server's state at confirmedSeq. Read it; it changes only through this class. */
  get confirmed(): RoomState {
    return this.#confirmed;
  }

  get confirmedSeq(): number {
    return this.#confirmedSeq;
  }

  /** The highest Lamport clock seen: room clocks from frames, committed events, own stamps. */
  get clock(): number {
    return this.#clock;
  }

  /** The actions the server has not answered, in the order the user made them. */
  get pending(): readonly PendingAction[] {
    return this.#entries.filter((entry) => entry.answeredSeq === undefined)
      .map((entry) => entry.action);
  }

  /**
   * Replaces the confirmed state (a join snapshot, a schema change, a failed verify).
   * `reducerState` is RoomState.toJSON() format. Pending actions stay and are re-applied over
   * it. Throws (and changes nothing) when the snapshot does not fit the schema:
   * VellumError invalid_argument or failed_precondition.
   */
  reset(seq: number, clock: number, reducerState: Json, schema?: Schema): void {
    const nextSchema = schema ?? this.#schema;
    const confirmed = RoomState.fromJSON(nextSchema, reducerState);
    this.#schema = nextSchema;
    this.#confirmed = confirmed;
    this.#confirmedSeq = seq;
    this.observeClock(clock);
    this.#dropAnsweredUpTo(seq);
    this.#rebase();
  }

  /**
   * Folds committed events (in seq order) into the confirmed state. Events at or below
   * confirmedSeq are ignored: each event is applied at most once (a counter is not idempotent).
   * System events only advance the seq. An event the local reducer refuses advances the seq too
   * (the server applied it as a no-op the same way). An own event leaves the pending actions
   * with its result; a superseded one also yields a Conflict.
   */
  applyConfirmed(events: RoomEvent[]): { results: ActionResult[]; conflicts: Conflict[] } {
    const results: ActionResult[] = [];
    const conflicts: Conflict[] = [];
    let changed = false;
    for (const event of events) {
      if (event.seq <= this.#confirmedSeq) continue;
      this.#confirmedSeq = event.seq;
      this.observeClock(Math.max(event.lamport, event.clock ?? 0));
      this.#remember(event.id, event.participant);
      if (event.system === true) continue;
      const local = this.#applyCommitted(event);
      changed = true;
      const own = this.#takeEntry(event.id);
      if (own === undefined || own.answeredSeq !== undefined) continue;
      const outcome = event.outcome ?? local?.outcome ?? 'applied';
      const by = event.by ?? (local?.outcome === 'superseded' ? local.by : undefined);
      const result = resultOf(own.action, event.seq, outcome, by);
      results.push(result);
      if (result.status === 'superseded') conflicts.push(this.#superseded(own.action, result.by));
    }
    changed = this.#dropAnsweredUpTo(this.#confirmedSeq) || changed;
    if (changed) this.#rebase();
    return { results, conflicts };
  }

  /** Observes a room clock (from any frame). */
  observeClock(clock: number): void {
    if (Number.isSafeInteger(clock) && clock > this.#clock) this.#clock = clock;
  }

  /**
   * A new local action, applied to the view at once. Its lamport is the highest clock seen + 1,
   * unless `lamport` is given (an action restored from the outbox keeps its own). Throws
   * VellumError('invalid_argument') when the reducer refuses it (unknown action, bad payload),
   * or when the id is pending already; nothing is queued then.
   */
  addPending(input: { id: string; action: string; payload: JsonObject; clientTime?: number;
    coalesceKey?: string; lamport?: number }): PendingAction {
    if (this.#entries.some((entry) => entry.action.id === input.id)) {
      throw new VellumError('invalid_argument', `action ${input.id} is pending already`);
    }
    const payload = asSent(input.payload);
    const action: PendingAction = { id: input.id, action: input.action, payload,
      lamport: input.lamport ?? this.#clock + 1, clientTime: input.clientTime ?? Date.now() };
    if (input.coalesceKey !== undefined) action.coalesceKey = input.coalesceKey;
    // Errors depend only on the schema and the event, so the view tells whether it applies.
    this.#ensureViewState().apply(this.#pendingEvent(action));
    this.#entries.push({ action });
    this.observeClock(action.lamport);
    this.#viewDocument = undefined;
    this.#notify();
    return action;
  }

  /** Drops a pending action without a result (it was coalesced into a newer one). */
  removePending(id: string): void {
    if (this.#takeEntry(id) !== undefined) this.#rebase();
  }

  /**
   * The server refused the action (an ack error): it leaves the view. Throws
   * VellumError('not_found') for an id that is not pending.
   */
  rejectPending(id: string, error: { code: string; message: string }):
    { result: ActionResult; conflict: Conflict } {
    const entry = this.#takeEntry(id);
    if (entry === undefined) throw new VellumError('not_found', `action ${id} is not pending`);
    this.#rebase();
    const { action } = entry;
    return { result: { id, action: action.action, status: 'rejected', error },
      conflict: { action, reason: 'rejected', error } };
  }

  /**
   * The server's committed result for an action still pending, answered outside the event
   * stream. Returns its ActionResult, or undefined when the id is not pending (its event came
   * first and reported it). If the event is part of the confirmed state (seq <= confirmedSeq:
   * committed before a reconnect's catch-up point), the action leaves the view now. Otherwise
   * its event is still to come: an applied or merged action stays in the view until then (no
   * flicker), a superseded one leaves it now (it changed nothing).
   */
  settlePending(id: string, result: { seq: number; outcome: CommittedOutcome; by?: string }):
    ActionResult | undefined {
    const entry = this.#entries.find((candidate) => candidate.action.id === id);
    if (entry === undefined || entry.answeredSeq !== undefined) return undefined;
    if (result.seq <= this.#confirmedSeq || result.outcome === 'superseded') {
      this.#takeEntry(id);
      this.#rebase();
    } else {
      entry.answeredSeq = result.seq;
    }
    return resultOf(entry.action, result.seq, result.outcome, result.by);
  }

  /**
   * The optimistic view: the confirmed document with every pending action re-applied in order.
   * Frozen, and the same object until something changes. A pending action the reducer now
   * refuses (say, after a schema change) is left out; the server will answer it.
   */
  view(): JsonObject {
    if (this.#viewDocument === undefined) {
      this.#viewDocument = this.#entries.length === 0 ? this.#confirmed.document() :
        this.#ensureViewState().document();
    }
    return this.#viewDocument;
  }

  /** Calls `listener` after every change of view(). Returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  // Applies a committed event to the confirmed state; undefined when the reducer refuses it.
  #applyCommitted(event: RoomEvent): Outcome | undefined {
    const reducerEvent: ReducerEvent = { seq: event.seq, id: event.id, action: event.action,
      lamport: event.lamport, participant: event.participant, serverTime: event.serverTime };
    if (event.payload !== undefined) reducerEvent.payload = event.payload;
    try {
      return this.#confirmed.apply(reducerEvent);
    } catch (error) {
      if (isVellumError(error)) return undefined;
      throw error;
    }
  }

  #pendingEvent(action: PendingAction): ReducerEvent {
    return { seq: 0, id: action.id, action: action.action, payload: action.payload,
      lamport: action.lamport, participant: this.#participant, serverTime: PENDING_SERVER_TIME };
  }

  #superseded(action: PendingAction, by: string): Conflict {
    const conflict: Conflict = { action, reason: 'superseded', by };
    const winner = this.#recent.get(by);
    if (winner !== undefined) conflict.winner = winner;
    return conflict;
  }

  #remember(eventId: string, participant: string): void {
    this.#recent.delete(eventId);
    this.#recent.set(eventId, participant);
    if (this.#recent.size > RECENT_EVENTS_MAX) {
      const oldest = this.#recent.keys().next();
      if (oldest.done !== true) this.#recent.delete(oldest.value);
    }
  }

  #takeEntry(id: string): PendingEntry | undefined {
    const index = this.#entries.findIndex((entry) => entry.action.id === id);
    if (index < 0) return undefined;
    const [entry] = this.#entries.splice(index, 1);
    return entry;
  }

  // Answered actions whose events are now part of the confirmed state leave the view.
  #dropAnsweredUpTo(seq: number): boolean {
    const before = this.#entries.length;
    this.#entries = this.#entries.filter((entry) =>
      entry.answeredSeq === undefined || entry.answeredSeq > seq);
    return this.#entries.length !== before;
  }

  #ensureViewState(): RoomState {
    if (this.#viewState === undefined) {
      const state = this.#confirmed.clone();
      for (const { action } of this.#entries) {
        try {
          state.apply(this.#pendingEvent(action));
        } catch (error) {
          if (!isVellumError(error)) throw error;
        }
      }
      this.#viewState = state;
    }
    return this.#viewState;
  }

  // Something under the pending actions changed: the view is computed again when next read.
  #rebase(): void {
    this.#viewState = undefined;
    this.#viewDocument = undefined;
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        // One listener's failure must not stop the others or leave this room half updated.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
