// SPDX-License-Identifier: Apache-2.0
// RoomClient: one participant in one room (docs/api/rooms.md "Protocol").
//
// An action goes: submit() → OptimisticRoom (the view shows it at once) →
// Coalescer (rapid updates to one key become one) → Outbox (durable) → a
// submit frame → the server's echo event and ack → its one 'result' (and a
// 'conflict' when it lost) → out of the outbox. Until then it is resent, with
// the same id, after every (re)connection: the server answers a resent id
// with its original result, so each action takes effect exactly once.
//
// The connection: join with lastSeq = the confirmed seq (so the server sends
// only the missed events, or a snapshot to reset from), reconnect with
// jittered exponential backoff, verify the confirmed state hash every
// `verifyEvery` events (a mismatch makes the server send a snapshot), and keep
// the confirmed room in the storage so that an offline start shows it.
//
// Frames are handled one at a time, in order (handling may wait for a schema
// fetch), on a promise chain.
import { Coalescer } from './coalesce.js';
import { OptimisticRoom } from './optimistic.js';
import { Outbox, SUBMIT_EVENTS_MAX } from './outbox.js';
import { RoomState, Schema } from './reducer/index.js';
import { MemoryOutboxStorage } from './storage/memory.js';
import {
  Backoff, frameText, httpUrl, randomId, requestJson, resolveWebSocket, utf8Length, wsUrl,
} from './transport.js';
import {
  VellumError, type ActionResult, type CachedRoom, type Conflict, type ConnectionStatus, type Json,
  type JsonObject, type OutboxStorage, type PendingAction, type PresenceEntry, type RoomEvent,
  type WebSocketLike,
} from './types.js';

export interface RoomClientOptions {
  /** Server base, http(s)://host:port (ws(s) derived). */
  url: string;
  app: string;
  room: string;
  participant: string;
  name?: string;
  /**
   * Room token (?token= on the WebSocket, X-Room-Token on HTTP); a function is
   * asked again on every connection attempt, so it can hand out a fresh one
   * when the last one expired. A fixed (or no) token the server refuses stops
   * the reconnects (an `error` event with the server's code, say
   * token_missing); a function's refused token is retried with backoff.
   */
  token?: string | (() => string | Promise<string>);
  /** Default MemoryOutboxStorage (nothing survives the process). */
  storage?: OutboxStorage;
  /** The quiet period before a coalesced key is sent: default 50 ms (0 = no coalescing). */
  coalesceWindowMs?: number;
  /** The longest a coalesced key waits while updates keep coming: default 1,000 ms. */
  coalesceMaxWaitMs?: number;
  /** Default 250 / 10,000 ms, exponential with jitter. */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number };
  /** Default globalThis.WebSocket, else the `ws` package. */
  WebSocket?: WebSocketLike;
  /** Verify the confirmed state hash every N confirmed events (default 200; 0 = never). */
  verifyEvery?: number;
}

export interface RoomClientStats {
  framesSent: number;
  bytesSent: number;
  actionsSubmitted: number;
  /** Events sent in submit frames, resends included. */
  actionsSent: number;
  actionsCoalesced: number;
}

interface RoomClientEvents {
  change: JsonObject;
  conflict: Conflict;
  result: ActionResult;
  presence: PresenceEntry[];
  status: ConnectionStatus;
  event: RoomEvent;
  /** Not an action's result: error frames, failed saves, a replaced connection. */
  error: VellumError;
}

type Listener<T> = (value: T) => void;

/** Close codes of docs/api/rooms.md. */
const CLOSE_REPLACED = 4001;
const CLOSE_ROOM_FULL = 4003;
const CLOSE_RATE = 4429;
/** Our own close code: a schema change needs a join from seq 0. */
const CLOSE_RESYNC = 4000;

/**
 * The server allows 50 submits/s with a burst of 100 by default; stay below
 * it. A server configured lower answers rate_limited: the client then halves
 * its rate (see SubmitRate).
 */
const SUBMITS_PER_SECOND = 40;
const SUBMIT_BURST = 80;
/** Save the confirmed room after this many events, at most this often. */
// The confirmed room is saved (for an offline start) at most once per
// SAVE_DELAY_MS while events arrive, and at once on a catch-up, a reset or
// the loss of the connection, so an offline reload shows what was last seen.
const SAVE_DELAY_MS = 1_000;
/** Ping when idle; a connection silent for longer than the timeout is dead. */
const PING_EVERY_MS = 10_000;
const SILENCE_TIMEOUT_MS = 25_000;
/** After a transient refusal (rate_limited, unavailable), resend this much later. */
const RESEND_DELAY_MS = 1_000;
const FLUSH_TIMEOUT_MS_DEFAULT = 30_000;

/** The server's default max-ws-message-bytes: submit frames stay within it. */
const WS_MESSAGE_BYTES_MAX = 64 * 1024;
const FRAME_BYTES_MIN = 4 * 1024;
const CLOSE_MESSAGE_TOO_BIG = 1009;

/** Per-event errors the server answers for transient reasons: the action is resent. */
const TRANSIENT_ERRORS = new Set(['unavailable', 'rate_limited', 'overloaded']);
/** Error frames that answer a whole submit frame (which then gets no ack). */
const SUBMIT_REFUSALS = new Set(['rate_limited', 'forbidden']);

type Frame = { type: string } & Record<string, unknown>;

export class RoomClient {
  readonly stats: RoomClientStats = {
    framesSent: 0, bytesSent: 0, actionsSubmitted: 0, actionsSent: 0, actionsCoalesced: 0,
  };
  private room: OptimisticRoom | undefined;
  private schemaVersion = 0;
  private readonly coalescer: Coalescer;
  private readonly backoff: Backoff;
  private readonly listeners = new Map<keyof RoomClientEvents, Set<Listener<never>>>();
  private readonly presence = new Map<string, PresenceEntry>();
  private ownPresence: Json | undefined;
  private socket: WebSocket | undefined;
  private currentStatus: ConnectionStatus = 'offline';
  private wantOnline = true;
  private closed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private inbox: Promise<void> = Promise.resolve();
  /** Ids sent on the current connection and not answered yet. */
  private readonly inFlight = new Set<string>();
  /**
   * Submit frames of this connection without an ack, by ref, and how many of
   * them an error frame refused (see onSubmitRefused).
   */
  private readonly unackedSubmits = new Map<number, string[]>();
  private refusedSubmits = 0;
  private submitRefusal = { code: '', message: '' };
  private readonly submitRate = new SubmitRate(SUBMITS_PER_SECOND, SUBMIT_BURST);
  private pumpTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private lastFrameAt = 0;
  private nextRef = 1;
  /** Halved when the server closes with 1009 (its message limit is configurable). */
  private frameBytesMax = WS_MESSAGE_BYTES_MAX;
  private eventsSinceVerify = 0;
  private eventsSinceSave = 0;
  private savedSeq = -1;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private saving: Promise<void> = Promise.resolve();
  /** open() waits here until the first join, or until the client stops for good. */
  private readyWaiters: Array<{ resolve: () => void; reject: (error: VellumError) => void }> = [];

  private constructor(
    private readonly options: RoomClientOptions,
    private readonly storage: OutboxStorage,
    private readonly outbox: Outbox,
    private readonly WebSocketImpl: WebSocketLike,
  ) {
    this.coalescer = new Coalescer({
      windowMs: options.coalesceWindowMs,
      maxWaitMs: options.coalesceMaxWaitMs,
      release: (actions) => this.released(actions),
      replaced: (old) => {
        this.stats.actionsCoalesced++;
        this.room?.removePending(old.id);
      },
    });
    this.backoff = new Backoff(
      options.reconnect?.minDelayMs ?? 250,
      options.reconnect?.maxDelayMs ?? 10_000,
    );
  }

  /**
   * Loads the outbox and the cached room, fetches the schema when online and
   * connects. Resolves once the state is known: from the cache, or after the
   * first join. Offline, it keeps reconnecting in the background.
   */
  static async open(options: RoomClientOptions): Promise<RoomClient> {
    const storage = options.storage ?? new MemoryOutboxStorage();
    const key = { app: options.app, room: options.room, participant: options.participant };
    const outbox = await Outbox.open(storage, key);
    const WebSocketImpl = await resolveWebSocket(options.WebSocket);
    const client = new RoomClient(options, storage, outbox, WebSocketImpl);
    await client.start();
    return client;
  }

  // ---------------------------------------------------------------------------
  // The API

  /** Applies the action locally at once and queues it; returns its id. */
  submit(action: string, payload: JsonObject = {}, options: { coalesceKey?: string } = {}): string {
    if (this.closed) throw new VellumError('failed_precondition', 'the room client is closed');
    const id = randomId();
    const pending = this.ready.addPending({
      id, action, payload, clientTime: Date.now(), coalesceKey: options.coalesceKey,
    });
    this.stats.actionsSubmitted++;
    this.coalescer.submit(pending);
    return id;
  }

  setPresence(state: Json): void {
    this.ownPresence = state;
    if (this.currentStatus === 'live') this.send({ op: 'presence', state });
  }

  /** The optimistic view: the confirmed state with the pending actions on top. */
  get state(): JsonObject {
    return this.ready.view();
  }

  get confirmedState(): JsonObject {
    return this.ready.confirmed.document();
  }

  get seq(): number {
    return this.ready.confirmedSeq;
  }

  get clock(): number {
    return this.ready.clock;
  }

  get pendingCount(): number {
    return this.ready.pending.length;
  }

  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  get participants(): PresenceEntry[] {
    return [...this.presence.values()];
  }

  /** The optimistic room itself, for tools and tests (read it; change it through submit). */
  get optimistic(): OptimisticRoom {
    return this.ready;
  }

  on<K extends keyof RoomClientEvents>(
    event: K,
    listener: Listener<RoomClientEvents[K]>,
  ): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** The room's state as of a past seq or time (GET /rooms/{app}/{room}/state?at=). */
  async stateAt(at: number | Date): Promise<{ seq: number; state: JsonObject }> {
    const query = { at: typeof at === 'number' ? at : at.toISOString() };
    const body = (await requestJson(httpUrl(this.options.url, this.roomPath('/state'), query), {
      headers: roomTokenHeader(await this.token()),
    })) as { seq: number; state: JsonObject };
    return { seq: body.seq, state: body.state };
  }

  /** Resolves when every action submitted so far has its result (the outbox is empty). */
  async flush(timeoutMs = FLUSH_TIMEOUT_MS_DEFAULT): Promise<void> {
    this.coalescer.flush();
    await this.outbox.settled();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new VellumError('timeout',
        `${this.outbox.size} actions still without a result after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.outbox.whenEmpty(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Releases the actions waiting in the coalescer and resolves once every
   * action submitted so far is durable in the outbox (a "saved offline" mark).
   */
  async persist(): Promise<void> {
    this.coalescer.flush();
    await this.outbox.settled();
  }

  /** Goes offline on purpose (the actions keep queueing) until connect(). */
  disconnect(): void {
    this.wantOnline = false;
    this.clearReconnect();
    this.dropSocket(1000, 'offline');
    this.setStatus('offline');
  }

  connect(): void {
    if (this.closed) return;
    this.wantOnline = true;
    if (this.socket || this.reconnectTimer) return;
    this.backoff.reset();
    void this.attempt();
  }

  /** Releases waiting actions into the outbox, saves the room and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.coalescer.close();
    await this.outbox.settled();
    this.closed = true;
    this.wantOnline = false;
    this.clearReconnect();
    clearTimeout(this.pumpTimer);
    clearTimeout(this.saveTimer);
    this.dropSocket(1000, 'closed');
    this.setStatus('closed');
    if (this.room) await this.saveRoom();
    await this.saving;
  }

  /** Sends {"op":"verify"} with the confirmed state hash now (when live). */
  verify(): void {
    if (this.currentStatus !== 'live' || !this.room) return;
    this.eventsSinceVerify = 0;
    this.send({ op: 'verify', seq: this.room.confirmedSeq, hash: this.room.confirmed.stateHash() });
  }

  // ---------------------------------------------------------------------------
  // Starting: cache, schema, outbox

  private get ready(): OptimisticRoom {
    if (!this.room) throw new VellumError('failed_precondition', 'the room is not loaded yet');
    return this.room;
  }

  private async start(): Promise<void> {
    const cached = await this.storage.loadRoom(
      this.options.app, this.options.room, this.options.participant);
    let fetched: { schema: Schema; version: number } | undefined;
    try {
      fetched = await this.fetchSchema();
    } catch (error) {
      if (!(error instanceof VellumError) || error.code !== 'unavailable') throw error;
    }
    let restored = false;
    if (fetched) restored = this.useSchema(fetched.schema, fetched.version, cached);
    else if (cached) {
      restored = this.useSchema(Schema.parse(cached.schema), cached.schemaVersion, cached);
    }
    this.connect();
    // Without a cached room of this schema the state is known after the first
    // join only (an empty room at seq 0 would be a wrong first view).
    if (!restored) {
      await new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    }
  }

  /** GET /apps/{app}/schema is public: no token (a token function is asked once per join). */
  private async fetchSchema(): Promise<{ schema: Schema; version: number }> {
    const url = httpUrl(this.options.url, `/apps/${encodeURIComponent(this.options.app)}/schema`);
    const body = (await requestJson(url)) as {
      version: number;
      schema: Json;
    };
    return { schema: Schema.parse(body.schema), version: body.version };
  }

  /**
   * Creates the optimistic room (from the cache if of this schema) and
   * restores the outbox. Returns whether the cached room was used.
   */
  private useSchema(schema: Schema, version: number, cached: CachedRoom | undefined): boolean {
    this.schemaVersion = version;
    const room = new OptimisticRoom(schema, this.options.participant);
    let restored = false;
    if (cached && cached.schemaVersion === version) {
      try {
        room.reset(cached.seq, cached.clock, cached.reducerState);
        this.savedSeq = cached.seq;
        restored = true;
      } catch (error) {
        this.emit('error', asVellumError(error));  // a stale cache: start from the server
      }
    }
    room.onChange(() => this.emitChange());
    this.room = room;
    this.restorePending();
    return restored;
  }

  /** Puts the outbox's actions (from an earlier run) back into the view. */
  private restorePending(): void {
    for (const action of this.outbox.actions) {
      try {
        this.ready.addPending(action);
      } catch {
        // The reducer refuses it now (the schema changed): it is still sent,
        // and the server's answer becomes its result.
      }
    }
  }

  // ---------------------------------------------------------------------------
  // The connection

  private async attempt(): Promise<void> {
    this.reconnectTimer = undefined;
    if (!this.wantOnline || this.closed || this.socket) return;
    this.setStatus('connecting');
    try {
      if (!this.room) {
        const fetched = await this.fetchSchema();
        if (!this.room) this.useSchema(fetched.schema, fetched.version, undefined);
      }
      const token = await this.token();
      const url = wsUrl(this.options.url, this.roomPath(''), {
        participant: this.options.participant,
        name: this.options.name,
        lastSeq: this.ready.confirmedSeq,
        token,
      });
      if (!this.wantOnline || this.closed || this.socket) return;
      this.attach(new this.WebSocketImpl(url), token);
    } catch (error) {
      this.emit('error', asVellumError(error));
      this.scheduleReconnect();
    }
  }

  private attach(socket: WebSocket, token: string | undefined): void {
    this.socket = socket;
    this.lastFrameAt = Date.now();
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      this.lastFrameAt = Date.now();
      const frame = parseFrame(frameText(message.data));
      if (frame) this.enqueue(() => this.handle(frame));
    };
    socket.onclose = (close) => {
      if (socket !== this.socket) return;
      this.enqueue(() => opened ? this.closedBy(close.code) : this.neverOpened(token));
    };
    socket.onerror = () => {};  // a close follows
    this.pingTimer = setInterval(() => this.keepAlive(socket), PING_EVERY_MS);
  }

  private keepAlive(socket: WebSocket): void {
    if (socket !== this.socket) return;
    if (Date.now() - this.lastFrameAt > SILENCE_TIMEOUT_MS) {
      this.dropSocket(4000, 'silent');
      this.scheduleReconnect();
    } else if (this.currentStatus === 'live') {
      this.send({ op: 'ping' });
    }
  }

  private closedBy(code: number): void {
    this.forgetSocket();
    if (!this.wantOnline || this.closed) return;
    if (code === CLOSE_REPLACED) {
      // Another connection of this participant took over: reconnecting would
      // replace it in turn, and the two would take turns for ever.
      const replaced = new VellumError('replaced', 'replaced by a newer connection (4001)');
      this.emit('error', replaced);
      return this.stopReconnecting(replaced);
    }
    if (code === CLOSE_RESYNC) return void this.attempt();
    if (code === CLOSE_MESSAGE_TOO_BIG) {
      this.frameBytesMax = Math.max(FRAME_BYTES_MIN, Math.floor(this.frameBytesMax / 2));
    }
    if (code === CLOSE_RATE) this.submitRate.slowDown();
    // A full room or a rate close: retry at the longest delay, jittered so
    // that the clients a full room turned away do not come back together.
    const slow = code === CLOSE_ROOM_FULL || code === CLOSE_RATE;
    this.scheduleReconnect(slow ? jittered(this.backoff.maxMs) : undefined);
  }

  /**
   * The WebSocket closed before it opened: the server refused the upgrade
   * (the reason, say token_expired, is in an HTTP answer that the WebSocket
   * API hides), or the server is unreachable. A read of the room over HTTP
   * with the same token tells a refused token from the rest.
   */
  private async neverOpened(token: string | undefined): Promise<void> {
    this.forgetSocket();
    if (!this.wantOnline || this.closed) return;
    const refusal = await this.tokenRefusal(token);
    if (!this.wantOnline || this.closed || this.socket) return;
    if (!refusal) return this.scheduleReconnect();
    this.emit('error', refusal);
    // A token function may give a good token next time (a fresh one after an
    // expiry): ask it again, with backoff. A fixed or missing token would be
    // refused for ever: stop until connect().
    if (typeof this.options.token === 'function') return this.scheduleReconnect();
    this.stopReconnecting(refusal);
  }

  /** The server's 401/403 for this token on the room (undefined: not a token problem). */
  private async tokenRefusal(token: string | undefined): Promise<VellumError | undefined> {
    const query = { after: this.room?.confirmedSeq ?? 0, limit: 1 };
    try {
      await requestJson(httpUrl(this.options.url, this.roomPath('/events'), query),
        { headers: roomTokenHeader(token) });
      return undefined;
    } catch (error) {
      const refusal = asVellumError(error);
      return refusal.status === 401 || refusal.status === 403 ? refusal : undefined;
    }
  }

  /**
   * Offline until connect(): after a replacement (4001) or a refused fixed
   * token. An open() still waiting for its first join fails with `error`.
   */
  private stopReconnecting(error: VellumError): void {
    this.wantOnline = false;
    this.clearReconnect();
    this.setStatus('offline');
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private scheduleReconnect(delayMs?: number): void {
    if (this.closed || !this.wantOnline || this.reconnectTimer || this.socket) return;
    this.setStatus('offline');
    const delay = delayMs ?? this.backoff.next();
    this.reconnectTimer = setTimeout(() => void this.attempt(), delay);
  }

  private clearReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    this.forgetSocket();
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch {
      // Closing a socket that never opened may throw (ws); it is gone either way.
    }
  }

  private forgetSocket(): void {
    this.socket = undefined;
    this.inFlight.clear();
    this.unackedSubmits.clear();
    this.refusedSubmits = 0;
    clearInterval(this.pingTimer);
    clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
  }

  private async token(): Promise<string | undefined> {
    const token = this.options.token;
    return typeof token === 'function' ? await token() : token;
  }

  private roomPath(suffix: string): string {
    const { app, room } = this.options;
    return `/rooms/${encodeURIComponent(app)}/${encodeURIComponent(room)}${suffix}`;
  }

  private send(message: JsonObject): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return false;
    const text = JSON.stringify(message);
    socket.send(text);
    this.stats.framesSent++;
    this.stats.bytesSent += utf8Length(text);
    return true;
  }

  // ---------------------------------------------------------------------------
  // Frames

  private enqueue(work: () => Promise<void> | void): void {
    this.inbox = this.inbox.then(work).catch((error) => this.emit('error', asVellumError(error)));
  }

  private async handle(frame: Frame): Promise<void> {
    if (!this.room) return;
    switch (frame.type) {
      case 'welcome': return this.onWelcome(frame);
      case 'snapshot': return this.onSnapshot(frame);
      case 'events': return this.onEvents(frame);
      case 'live': return this.onLive();
      case 'ack': return this.onAck(frame);
      case 'presence': return this.onPresence(frame);
      case 'error': return this.onErrorFrame(frame);
      default: return;  // verified, pong
    }
  }

  private async onWelcome(frame: Frame): Promise<void> {
    this.setStatus('catching-up');
    this.presence.clear();
    for (const entry of (frame['participants'] ?? []) as PresenceEntry[]) {
      this.presence.set(entry.participant, entry);
    }
    this.emit('presence', this.participants);
    this.ready.observeClock(Number(frame['clock'] ?? 0));
    const version = Number(frame['schemaVersion']);
    if (version !== this.schemaVersion) await this.resyncUnderNewSchema();
  }

  /**
   * The app's schema changed while we were away: our confirmed state was
   * reduced under the old one. Start from nothing under the new schema and
   * join again from seq 0 (the server sends every event, or a snapshot).
   */
  private async resyncUnderNewSchema(): Promise<void> {
    const fetched = await this.fetchSchema();
    this.schemaVersion = fetched.version;
    this.ready.reset(0, 0, RoomState.create(fetched.schema).toJSON(), fetched.schema);
    this.dropSocket(CLOSE_RESYNC, 'schema changed');
    void this.attempt();
  }

  private async onSnapshot(frame: Frame): Promise<void> {
    const reducerState = frame['reducerState'] as Json | undefined;
    if (reducerState === undefined) return this.snapshotWithoutReducerState(frame);
    let schema: Schema | undefined;
    const version = Number(frame['schemaVersion']);
    if (version !== this.schemaVersion) {
      const fetched = await this.fetchSchema();
      schema = fetched.schema;
      this.schemaVersion = fetched.version;
    }
    this.ready.reset(snapshotSeq(frame, reducerState), Number(frame['clock']), reducerState, schema);
    this.eventsSinceVerify = 0;
    this.scheduleSave(true);
  }

  /** A server older than reducerState in snapshots: fine only if we already agree with it. */
  private snapshotWithoutReducerState(frame: Frame): void {
    const room = this.ready;
    const agree = Number(frame['seq']) === room.confirmedSeq &&
      frame['hash'] === room.confirmed.stateHash();
    if (agree) return;
    this.emit('error', new VellumError('failed_precondition',
      'the server sent a snapshot without "reducerState": the client cannot reset from it'));
  }

  private onEvents(frame: Frame): void {
    const room = this.ready;
    const events = (frame['events'] ?? []) as RoomEvent[];
    const fresh = events.filter((event) => event.seq > room.confirmedSeq);
    const { results, conflicts } = room.applyConfirmed(events);
    room.observeClock(Number(frame['clock'] ?? 0));
    for (const result of results) this.finished(result);
    for (const conflict of conflicts) this.emit('conflict', conflict);
    for (const event of fresh) this.settledWithoutView(event);
    for (const event of fresh) this.emit('event', event);
    this.eventsSinceVerify += fresh.length;
    this.eventsSinceSave += fresh.length;
    this.afterConfirmed();
  }

  /** Our own committed event whose action the view could not hold (see restorePending). */
  private settledWithoutView(event: RoomEvent): void {
    const action = this.outbox.get(event.id);
    if (!action || this.ready.pending.some((pending) => pending.id === event.id)) return;
    const result = resultOfEvent(action, event);
    this.finished(result);
    if (result.status === 'superseded') {
      this.emit('conflict', { action, reason: 'superseded', by: result.by });
    }
  }

  private afterConfirmed(): void {
    const every = this.options.verifyEvery ?? 200;
    if (every > 0 && this.eventsSinceVerify >= every) this.verify();
    if (this.eventsSinceSave > 0) this.scheduleSave(false);
  }

  private onLive(): void {
    this.setStatus('live');
    this.backoff.reset();
    if (this.ownPresence !== undefined) this.send({ op: 'presence', state: this.ownPresence });
    this.pump();
    this.scheduleSave(true);
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  private onAck(frame: Frame): void {
    if (typeof frame['ref'] === 'number' && this.unackedSubmits.delete(frame['ref'])) {
      this.submitRate.accepted();
    }
    const results = (frame['results'] ?? []) as AckResult[];
    let transient = false;
    for (const answer of results) {
      this.inFlight.delete(answer.id);
      if (!answer.error) this.settle(answer);
      else if (TRANSIENT_ERRORS.has(answer.error.code)) transient = true;
      else this.reject(answer.id, answer.error);
    }
    this.ready.observeClock(Number(frame['clock'] ?? 0));
    if (transient) this.resendLater();
    this.settleRefusedSubmits();
  }

  private settle(answer: AckResult): void {
    const action = this.outbox.get(answer.id);
    const outcome = { seq: answer.seq!, outcome: answer.outcome ?? 'applied', by: answer.by };
    const viewed = this.ready.settlePending(answer.id, outcome);
    if (viewed) return this.finishedWithConflict(viewed, action);
    if (action) this.finishedWithConflict(resultOfAnswer(action, answer), action);
  }

  private finishedWithConflict(result: ActionResult, action: PendingAction | undefined): void {
    this.finished(result);
    if (result.status === 'superseded' && action) {
      this.emit('conflict', { action, reason: 'superseded', by: result.by });
    }
  }

  private reject(id: string, error: { code: string; message: string }): void {
    const pendingInView = this.ready.pending.some((pending) => pending.id === id);
    if (pendingInView) {
      const { result, conflict } = this.ready.rejectPending(id, error);
      this.finished(result);
      this.emit('conflict', conflict);
      return;
    }
    const action = this.outbox.get(id);
    if (!action) return;  // answered before (a duplicate answer)
    this.finished({ id, action: action.action, status: 'rejected', error });
    this.emit('conflict', { action, reason: 'rejected', error });
  }

  /** An action's one result: reported, then out of the outbox. */
  private finished(result: ActionResult): void {
    void this.outbox.remove([result.id]).catch((error) => this.emit('error', asVellumError(error)));
    this.emit('result', result);
  }

  private onPresence(frame: Frame): void {
    const participant = String(frame['participant']);
    const event = frame['event'];
    if (event === 'left') {
      this.presence.delete(participant);
    } else {
      const previous = this.presence.get(participant);
      this.presence.set(participant, {
        participant,
        name: String(frame['name'] ?? previous?.name ?? ''),
        state: (frame['state'] ?? previous?.state ?? null) as Json,
        connected: event !== 'disconnected',
      });
    }
    this.emit('presence', this.participants);
  }

  private onErrorFrame(frame: Frame): void {
    const error = (frame['error'] ?? {}) as { code?: string; message?: string };
    const code = error.code ?? 'unknown';
    const message = error.message ?? code;
    this.emit('error', new VellumError(code, message));
    if (SUBMIT_REFUSALS.has(code)) this.onSubmitRefused({ code, message });
  }

  /**
   * A submit frame was refused as a whole (rate_limited, or forbidden for a
   * read-only token): it gets this error frame instead of an ack, and the
   * frame does not say which submit it was. The server answers submits in
   * the order they came, each with one ack or one refusal, so once as many
   * submits are refused as are still without an ack, those are the refused
   * ones (settleRefusedSubmits). Until then the others' acks are awaited:
   * resending them all at once would send what is being committed twice.
   * Nothing new is sent meanwhile either: more would be refused too.
   */
  private onSubmitRefused(error: { code: string; message: string }): void {
    this.refusedSubmits++;
    this.submitRefusal = error;
    this.settleRefusedSubmits();
  }

  private settleRefusedSubmits(): void {
    if (this.refusedSubmits === 0 || this.refusedSubmits < this.unackedSubmits.size) return;
    const refused = [...this.unackedSubmits.values()].flat();
    const error = this.submitRefusal;
    this.unackedSubmits.clear();
    this.refusedSubmits = 0;
    for (const id of refused) this.inFlight.delete(id);
    if (error.code === 'forbidden') {
      // A read-only token: refused, not dropped (a result and a conflict each).
      for (const id of refused) this.reject(id, error);
      this.pump();
    } else {
      // The server allows less than we assumed: halve our rate, once per
      // refused round (the refusals of one burst come together); accepted
      // submits raise it again (SubmitRate).
      this.submitRate.slowDown();
      this.resendLater();
    }
  }

  // ---------------------------------------------------------------------------
  // Sending actions

  /** Actions out of the coalescer: into the outbox (durably), then onto the wire. */
  private released(actions: PendingAction[]): void {
    this.outbox.add(actions).then(
      // Pump once the writes asked for by now are done too: a burst of
      // submits goes out in full frames, not one frame (and one of the rate's
      // tokens) per action as each write completes.
      () => this.outbox.settled().then(() => this.pump()),
      (error) => {
        const failure = { code: 'storage_failed', message: asVellumError(error).message };
        for (const action of actions) this.rejectUnstored(action, failure);
      },
    );
  }

  private rejectUnstored(action: PendingAction, error: { code: string; message: string }): void {
    const { result, conflict } = this.ready.rejectPending(action.id, error);
    this.emit('result', result);
    this.emit('conflict', conflict);
  }

  /** Sends every outbox action not yet in flight on this connection, in batches. */
  private pump(): void {
    if (this.currentStatus !== 'live' || this.pumpTimer || this.refusedSubmits > 0) return;
    const unsent = this.outbox.actions.filter((action) => !this.inFlight.has(action.id));
    for (const batch of submitBatches(unsent, this.frameBytesMax)) {
      if (batch.length === 1 && frameBytes(batch) > this.frameBytesMax) {
        this.submitOverHttp(batch[0]!);
        continue;
      }
      const waitMs = this.submitRate.take();
      if (waitMs > 0) {
        this.pumpTimer = setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, waitMs);
        return;
      }
      const ref = this.nextRef++;
      if (!this.send({ op: 'submit', ref, events: batch.map(wireEvent) })) return;
      this.stats.actionsSent += batch.length;
      this.unackedSubmits.set(ref, batch.map((action) => action.id));
      for (const action of batch) this.inFlight.add(action.id);
    }
  }

  /**
   * An action too large for a WebSocket message goes over HTTP (whose body
   * limit is far larger), so that it still gets the server's answer — most
   * likely payload_too_large — instead of closing the connection (1009) again
   * and again.
   */
  private submitOverHttp(action: PendingAction): void {
    this.inFlight.add(action.id);
    this.stats.actionsSent++;
    const url = httpUrl(this.options.url, this.roomPath('/events'));
    const body = { participant: this.options.participant, events: [wireEvent(action)] };
    void this.token()
      .then((token) => requestJson(url, { method: 'POST', body, headers: roomTokenHeader(token) }))
      .then(
        (answer) => this.enqueue(() => this.onAck({ type: 'ack', ...(answer as JsonObject) })),
        (error) => this.enqueue(() => this.httpSubmitFailed(action, asVellumError(error))),
      );
  }

  private httpSubmitFailed(action: PendingAction, error: VellumError): void {
    this.inFlight.delete(action.id);
    // 403 (a read-only token) is final, as the WebSocket's forbidden is; 401
    // (an expired token, say) may pass with the next token.
    const final = error.status !== undefined && error.status >= 400 && error.status < 500 &&
      ![401, 408, 429].includes(error.status);
    if (final) return this.reject(action.id, { code: error.code, message: error.message });
    this.emit('error', error);
    // A fixed token the server refuses will be refused again: the action stays
    // in the outbox until the next join (connect()), as on the WebSocket.
    if (error.status === 401 && typeof this.options.token !== 'function') return;
    this.resendLater();
  }

  /**
   * Sends the unanswered actions not in flight again a little later. (Those
   * still in flight keep waiting for their acks: a second copy would be
   * answered with the first one's result, at the price of a submit.)
   */
  private resendLater(): void {
    clearTimeout(this.pumpTimer);
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, RESEND_DELAY_MS);
  }

  // ---------------------------------------------------------------------------
  // The cached room

  /** Saves the confirmed room soon (now, for catch-ups and resets). */
  private scheduleSave(now: boolean): void {
    if (this.saveTimer && !now) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.saveRoom();
    }, now ? 0 : SAVE_DELAY_MS);
  }

  private saveRoom(): Promise<void> {
    this.saving = this.saving.then(async () => {
      const room = this.ready;
      if (room.confirmedSeq === this.savedSeq) return;
      const seq = room.confirmedSeq;
      this.eventsSinceSave = 0;
      try {
        await this.storage.saveRoom({
          app: this.options.app, room: this.options.room, participant: this.options.participant,
          schema: room.schema.json, schemaVersion: this.schemaVersion, seq, clock: room.clock,
          reducerState: room.confirmed.toJSON(),
        });
        this.savedSeq = seq;
      } catch (error) {
        this.emit('error', asVellumError(error));
      }
    });
    return this.saving;
  }

  // ---------------------------------------------------------------------------
  // Events to listeners

  private setStatus(status: ConnectionStatus): void {
    if (this.currentStatus === status || (this.closed && status !== 'closed')) return;
    if (this.currentStatus === 'live' && this.room) this.scheduleSave(true);  // going offline
    this.currentStatus = status;
    this.emit('status', status);
  }

  private emitChange(): void {
    if (this.listeners.get('change')?.size) this.emit('change', this.ready.view());
  }

  private emit<K extends keyof RoomClientEvents>(event: K, value: RoomClientEvents[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as Listener<RoomClientEvents[K]>)(value);
      } catch (error) {
        // A listener's bug must not break the client's bookkeeping.
        if (event !== 'error') this.emit('error', asVellumError(error));
      }
    }
  }
}

interface AckResult {
  id: string;
  seq?: number;
  outcome?: 'applied' | 'merged' | 'superseded';
  by?: string;
  error?: { code: string; message: string };
}

function parseFrame(text: string): Frame | undefined {
  try {
    const frame = JSON.parse(text) as Frame;
    return typeof frame === 'object' && frame !== null && typeof frame.type === 'string'
      ? frame
      : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of a submit frame holding `actions` (the envelope is under 64 bytes). */
function frameBytes(actions: PendingAction[]): number {
  return 64 + actions.reduce((sum, action) => sum + eventBytes(action) + 1, 0);
}

function eventBytes(action: PendingAction): number {
  return utf8Length(JSON.stringify(wireEvent(action)));
}

/**
 * Cuts the actions, in order, into submits of at most SUBMIT_EVENTS_MAX events
 * and `bytesMax` bytes; an action too large for any frame is a batch alone.
 */
function submitBatches(actions: PendingAction[], bytesMax: number): PendingAction[][] {
  const batches: PendingAction[][] = [];
  let batch: PendingAction[] = [];
  let bytes = 64;
  for (const action of actions) {
    const size = eventBytes(action) + 1;
    if (batch.length > 0 && (batch.length === SUBMIT_EVENTS_MAX || bytes + size > bytesMax)) {
      batches.push(batch);
      batch = [];
      bytes = 64;
    }
    batch.push(action);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function wireEvent(action: PendingAction): JsonObject {
  return {
    id: action.id,
    action: action.action,
    payload: action.payload,
    lamport: action.lamport,
    clientTime: action.clientTime,
  };
}

function resultOfEvent(action: PendingAction, event: RoomEvent): ActionResult {
  return resultOfAnswer(action, { id: event.id, seq: event.seq, outcome: event.outcome,
    by: event.by });
}

function resultOfAnswer(action: PendingAction, answer: AckResult): ActionResult {
  const base = { id: action.id, action: action.action, seq: answer.seq ?? 0 };
  if (answer.outcome === 'superseded') {
    return { ...base, status: 'superseded', by: answer.by ?? '' };
  }
  return { ...base, status: answer.outcome ?? 'applied' };
}

/** Room tokens go in X-Room-Token over HTTP (Authorization is for API keys). */
function roomTokenHeader(token: string | undefined): Record<string, string> {
  return token ? { 'x-room-token': token } : {};
}

/**
 * The seq a snapshot's state is at. The server reduces a batch of submits
 * before its append is durable, so a snapshot taken meanwhile holds events
 * past its `seq` (the committed one); the reducer state's seqMax says how far
 * it goes. Resetting to `seq` would apply those events a second time when
 * their broadcast follows (a counter would count them twice).
 */
function snapshotSeq(frame: Frame, reducerState: Json): number {
  const seqMax = (reducerState as JsonObject | null)?.['seqMax'];
  const seq = Number(frame['seq']);
  return typeof seqMax === 'number' && Number.isSafeInteger(seqMax) ? Math.max(seq, seqMax) : seq;
}

/** A delay in [ms/2, ms]. */
function jittered(ms: number): number {
  return Math.round(ms / 2 + (Math.random() * ms) / 2);
}

/**
 * The client's submit rate: a token bucket kept under the server's (50/s,
 * burst 100 by default). When the server says rate_limited anyway (it is
 * configured lower), `slowDown` halves the rate, down to 1 submit/s, and each
 * accepted submit raises it a little again, up to where it started (AIMD, as
 * TCP does): the server's refusals go on for a while after a burst, so the
 * halving overshoots, and the recovery finds the server's rate again.
 */
class SubmitRate {
  private tokens: number;
  private at = Date.now();
  private readonly maxPerSecond: number;
  private readonly maxBurst: number;

  constructor(
    private perSecond: number,
    private burst: number,
  ) {
    this.tokens = burst;
    this.maxPerSecond = perSecond;
    this.maxBurst = burst;
  }

  /** Takes a token: 0, or how long to wait for the next one (ms). */
  take(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1) return Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
    this.tokens -= 1;
    return 0;
  }

  slowDown(): void {
    this.tokens = 0;
    this.at = Date.now();
    this.perSecond = Math.max(1, this.perSecond / 2);
    this.burst = Math.max(1, Math.floor(this.burst / 2));
  }

  /** About +1 submit/s per second of accepted submits. */
  accepted(): void {
    if (this.perSecond >= this.maxPerSecond) return;
    this.perSecond = Math.min(this.maxPerSecond, this.perSecond + 1 / this.perSecond);
    this.burst = Math.min(this.maxBurst, Math.max(this.burst, Math.floor(this.perSecond)));
  }
}

function asVellumError(error: unknown): VellumError {
  if (error instanceof VellumError) return error;
  return new VellumError('internal', error instanceof Error ? error.message : String(error));
}
