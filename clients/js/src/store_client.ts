// SPDX-License-Identifier: Apache-2.0
// EventStoreClient: the event store over HTTP and WebSocket (docs/api/http.md).
// Appends with an expected revision (a mismatch is VellumError
// 'wrong_expected_revision', status 409), reads, and subscriptions that
// reconnect after a drop or a server restart and resume right after the last
// event they delivered, so the subscriber sees every event once, in order.
import {
  Backoff, frameText, httpUrl, requestJson, resolveWebSocket, wsUrl, type Query,
} from './transport.js';
import { VellumError, type Json, type JsonObject, type WebSocketLike } from './types.js';

export interface EventStoreClientOptions {
  /** Server base, http(s)://host:port. */
  url: string;
  /** API key (Authorization: Bearer) when the server has keys. */
  apiKey?: string;
  WebSocket?: WebSocketLike;
}

/** An event to append (CloudEvents attributes, docs/api/http.md "Events on the wire"). */
export interface NewEvent {
  type: string;
  id?: string;
  data?: Json;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  data_base64?: string;
  metadata?: JsonObject;
  correlationid?: string;
  causationid?: string;
  schemaversion?: number;
}

/** A stored event as the server returns it. */
export interface StoredEvent extends NewEvent {
  specversion: '1.0';
  id: string;
  source: string;
  stream: string;
  streamrevision: number;
  position: number;
  recordedtime: string;
}

export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | number;

export interface AppendResult {
  stream: string;
  firstRevision: number;
  lastRevision: number;
  position: number;
  lastPosition: number;
  idempotentReplay?: boolean;
}

export interface ReadOptions {
  from?: number;
  direction?: 'forward' | 'backward';
  limit?: number;
}

export interface ReadAllOptions extends ReadOptions {
  type?: string | string[];
  category?: string;
  subject?: string;
  streamPrefix?: string;
}

/** One page; `next` is the `from` of the next page, null at the end. */
export interface ReadPage {
  events: StoredEvent[];
  next: number | null;
}

export interface SubscribeOptions {
  /** Exactly one of stream, category and all. */
  stream?: string;
  category?: string;
  all?: boolean;
  /** A revision (stream) or position (otherwise), inclusive; omitted: only new events. */
  from?: number;
  /** Filters for category and all subscriptions. */
  type?: string | string[];
  subject?: string;
  streamPrefix?: string;
  onEvent: (event: StoredEvent) => void;
  /** Called each time the subscription has caught up (after every (re)connection). */
  onLive?: () => void;
  /** Drops (it reconnects) and final errors (it stops: a tombstoned stream). */
  onError?: (error: VellumError) => void;
  reconnect?: { minDelayMs?: number; maxDelayMs?: number };
}

export interface Subscription {
  close(): void;
}

/** Close codes after which resubscribing cannot help (docs/api/http.md). */
const FINAL_CLOSE_CODES = new Set([4410]);

export class EventStoreClient {
  constructor(private readonly options: EventStoreClientOptions) {}

  async append(
    stream: string,
    events: NewEvent[],
    options: { expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    const body = { expectedRevision: options.expectedRevision ?? 'any', events } as unknown as Json;
    return (await this.request('POST', `/streams/${encodeURIComponent(stream)}`, {}, body)) as
      AppendResult;
  }

  async readStream(stream: string, options: ReadOptions = {}): Promise<ReadPage> {
    const query = { from: options.from, direction: options.direction, limit: options.limit };
    return (await this.request('GET', `/streams/${encodeURIComponent(stream)}`, query)) as ReadPage;
  }

  async readAll(options: ReadAllOptions = {}): Promise<ReadPage> {
    const { type, ...rest } = options;
    const query: Query = { ...rest, type: Array.isArray(type) ? type.join(',') : type };
    return (await this.request('GET', '/all', query)) as ReadPage;
  }

  async readEvent(id: string): Promise<StoredEvent> {
    return (await this.request('GET', `/events/${encodeURIComponent(id)}`)) as StoredEvent;
  }

  /** Subscribes over WebSocket; reconnects and resumes until close(). */
  subscribe(options: SubscribeOptions): Subscription {
    const chosen = [options.stream !== undefined, options.category !== undefined, !!options.all];
    if (chosen.filter(Boolean).length !== 1) {
      throw new VellumError('invalid_argument', 'give exactly one of stream, category or all');
    }
    const subscription = new ResumingSubscription(this.options, options);
    subscription.start();
    return subscription;
  }

  private request(method: string, path: string, query: Query = {}, body?: Json): Promise<unknown> {
    return requestJson(httpUrl(this.options.url, path, query), {
      method, body, bearer: this.options.apiKey,
    });
  }
}

/**
 * One logical subscription over successive WebSockets. Its cursor is the
 * next revision (stream) or position (otherwise) to deliver: every
 * connection asks for `from=cursor`, and events below the cursor (none, in
 * principle) are dropped, so nothing is delivered twice or skipped.
 */
class ResumingSubscription implements Subscription {
  private cursor: number | undefined;
  private socket: WebSocket | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly backoff: Backoff;

  constructor(
    private readonly client: EventStoreClientOptions,
    private readonly options: SubscribeOptions,
  ) {
    this.cursor = options.from;
    this.backoff = new Backoff(
      options.reconnect?.minDelayMs ?? 250,
      options.reconnect?.maxDelayMs ?? 10_000,
    );
  }

  start(): void {
    void this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, 'closed');
    this.socket = undefined;
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    try {
      // A live-only stream subscription pins its start first: the caughtUp
      // frame carries a global position, not the stream's revision.
      if (this.cursor === undefined && this.options.stream !== undefined) {
        this.cursor = await this.streamEnd(this.options.stream);
      }
      const WebSocketImpl = await resolveWebSocket(this.client.WebSocket);
      if (this.closed) return;
      this.attach(this.open(WebSocketImpl));
    } catch (error) {
      this.failed(error instanceof VellumError ? error : new VellumError('unavailable',
        String(error)));
    }
  }

  private async streamEnd(stream: string): Promise<number> {
    try {
      const page = (await requestJson(
        httpUrl(this.client.url, `/streams/${encodeURIComponent(stream)}`,
          { direction: 'backward', limit: 1 }),
        { bearer: this.client.apiKey })) as ReadPage;
      return page.events.length > 0 ? page.events[0]!.streamrevision + 1 : 0;
    } catch (error) {
      if (error instanceof VellumError && error.code === 'stream_not_found') return 0;
      throw error;
    }
  }

  private url(): string {
    const { stream, category, all, type, subject, streamPrefix } = this.options;
    const query: Query = {
      stream, category, all: all ? 'true' : undefined, from: this.cursor,
      type: Array.isArray(type) ? type.join(',') : type, subject, streamPrefix,
    };
    return wsUrl(this.client.url, '/subscribe', query);
  }

  /**
   * The server takes the API key as a bearer header only. Browsers cannot set
   * headers on a WebSocket; the `ws` package (Node) takes them as an option.
   */
  private open(WebSocketImpl: WebSocketLike): WebSocket {
    const apiKey = this.client.apiKey;
    if (!apiKey || !isNode()) return new WebSocketImpl(this.url());
    const withOptions = WebSocketImpl as unknown as new (url: string, options: object) => WebSocket;
    return new withOptions(this.url(), { headers: { authorization: `Bearer ${apiKey}` } });
  }

  private attach(socket: WebSocket): void {
    this.socket = socket;
    socket.onmessage = (message) => {
      if (socket === this.socket) this.onFrame(frameText(message.data));
    };
    socket.onclose = (close) => {
      if (socket !== this.socket) return;
      this.socket = undefined;
      if (FINAL_CLOSE_CODES.has(close.code)) {
        this.closed = true;
        this.options.onError?.(new VellumError('stream_deleted', `closed with ${close.code}`));
        return;
      }
      this.failed(new VellumError('unavailable', `subscription closed (${close.code})`));
    };
    socket.onerror = () => {};  // a close follows
  }

  private onFrame(text: string): void {
    const frame = JSON.parse(text) as {
      event?: StoredEvent;
      caughtUp?: { position: number };
      error?: { error: string; message: string };
    };
    if (frame.event) this.deliver(frame.event);
    else if (frame.caughtUp) this.caughtUp(frame.caughtUp.position);
    else if (frame.error) {
      this.options.onError?.(new VellumError(frame.error.error, frame.error.message));
    }
  }

  private deliver(event: StoredEvent): void {
    const at = this.options.stream !== undefined ? event.streamrevision : event.position;
    if (this.cursor !== undefined && at < this.cursor) return;  // seen before a reconnect
    this.cursor = at + 1;
    this.options.onEvent(event);
  }

  private caughtUp(position: number): void {
    // A live-only log subscription starts at the head it was told about.
    if (this.cursor === undefined && this.options.stream === undefined) this.cursor = position;
    this.backoff.reset();
    this.options.onLive?.();
  }

  private failed(error: VellumError): void {
    if (this.closed) return;
    this.options.onError?.(error);
    this.timer = setTimeout(() => void this.connect(), this.backoff.next());
  }
}

function isNode(): boolean {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof process?.versions?.node === 'string';
}
