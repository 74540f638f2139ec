// SPDX-License-Identifier: Apache-2.0
// Shared types of the Vellum client. The wire shapes are specified in
// docs/api/rooms.md (rooms) and docs/api/http.md (the event store); this file
// is the contract between the client's modules (reducer, optimistic state,
// outbox, coalescer, transports).

/** Any JSON value. Numbers in room state are integers within ±(2^53 − 1). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** An error with a stable machine-readable code (the server's codes where they exist). */
export class VellumError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message.startsWith(code) ? message : `${code}: ${message}`);
    this.name = 'VellumError';
  }
}

// ---------------------------------------------------------------------------
// Rooms (docs/api/rooms.md)

/** A committed room event as the server sends it ("Room events" + "Events on the wire"). */
export interface RoomEvent {
  seq: number;
  id: string;
  action: string;
  payload?: Json;
  lamport: number;
  participant: string;
  /** Nanoseconds since the Unix epoch, a decimal string (exceeds 2^53). */
  serverTime: string;
  /** Presence facts ($joined / $left): occupy a seq, never reach the reducer. */
  system?: boolean;
  outcome?: 'applied' | 'merged' | 'superseded';
  /** The winning event's id when `outcome` is superseded. */
  by?: string;
  clock?: number;
  clientTime?: Json;
}

/** What applying an event did (docs/api/rooms.md "Outcomes"). */
export type Outcome =
  | { outcome: 'applied' }
  | { outcome: 'merged' }
  | { outcome: 'superseded'; by: string };

/** An action the local participant made and the server has not yet answered. */
export interface PendingAction {
  /** The event id: a UUID made by the client, stable across retries (idempotency key). */
  id: string;
  action: string;
  payload: JsonObject;
  /** The Lamport clock the action is sent with. */
  lamport: number;
  /** Client wall time, Unix ms (informational; sent as clientTime). */
  clientTime: number;
  /** Actions with the same key inside the coalescing window become one (seed 001). */
  coalesceKey?: string;
}

/** The final, visible result of one of this client's actions (never silently dropped). */
export type ActionResult =
  | { id: string; action: string; status: 'applied' | 'merged'; seq: number }
  | { id: string; action: string; status: 'superseded'; seq: number; by: string }
  | { id: string; action: string; status: 'rejected'; error: { code: string; message: string } };

/** Reported when one of this client's actions lost (seed 002's conflict notice). */
export interface Conflict {
  action: PendingAction;
  /** superseded: committed but another event won; rejected: the server refused it. */
  reason: 'superseded' | 'rejected';
  /** The winning event's id (superseded). */
  by?: string;
  /** Who made the winning event, when the client knows it. */
  winner?: string;
  error?: { code: string; message: string };
}

export interface PresenceEntry {
  participant: string;
  name: string;
  state: Json;
  connected: boolean;
}

export type ConnectionStatus = 'connecting' | 'catching-up' | 'live' | 'offline' | 'closed';

/**
 * Persistence of the outbox (actions not yet acknowledged). Implementations:
 * MemoryOutboxStorage, FileOutboxStorage (Node), IndexedDbOutboxStorage (browsers).
 * Every method resolves only once the change is durable.
 */
export interface OutboxRecord {
  app: string;
  room: string;
  participant: string;
  action: PendingAction;
  /** Insertion order, for replay in the order the user acted. */
  order: number;
}

/** The last confirmed state of a room, kept so that an offline start shows it. */
export interface CachedRoom {
  app: string;
  room: string;
  participant: string;
  schema: Json;
  schemaVersion: number;
  seq: number;
  clock: number;
  /** RoomState.toJSON(): the reducer snapshot (docs/api/rooms.md "Snapshots"). */
  reducerState: Json;
}

export interface OutboxStorage {
  load(): Promise<OutboxRecord[]>;
  /** Inserts or replaces (same action id) records. */
  put(records: OutboxRecord[]): Promise<void>;
  remove(ids: string[]): Promise<void>;
  loadRoom(app: string, room: string, participant: string): Promise<CachedRoom | undefined>;
  saveRoom(room: CachedRoom): Promise<void>;
  close?(): Promise<void>;
}

/** A WebSocket constructor: the browser's global, or the `ws` package in Node. */
export type WebSocketLike = {
  new (url: string): WebSocket;
};
