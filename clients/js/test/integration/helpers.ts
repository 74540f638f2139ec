// SPDX-License-Identifier: Apache-2.0
// Helpers of the integration tests (not a test file): schemas, waiting for a
// condition, restarting a server on the same port and data directory, a
// recording WebSocket, the server's view of a room.
import { WebSocket as NodeWebSocket } from 'ws';
import { startServer, type RunningServer } from '../support/server.js';
import type { JsonObject, RoomEvent, WebSocketLike } from '../../src/types.js';

/** Trip planner (spec/rooms/vectors/trip_planner.json) plus a draggable pin per item. */
export const tripSchema: JsonObject = {
  policies: {
    '/title': 'lww', '/dates': 'lww', '/members': 'set', '/activities': 'list',
    '/votes/*': 'set', '/pins/*': 'lww', '/likes': 'counter',
  },
  actions: {
    trip_renamed: [{ op: 'set', path: '/title', value: '$payload.title' }],
    member_joined: [{ op: 'add', path: '/members', value: '$participant' }],
    activity_added: [{ op: 'insert', path: '/activities',
      value: { id: '$payload.activityId', name: '$payload.name', addedBy: '$participant' } }],
    vote_cast: [{ op: 'add', path: '/votes/{payload.activityId}', value: '$participant' }],
    pin_moved: [{ op: 'set', path: '/pins/{payload.pin}', value: { x: '$payload.x',
      y: '$payload.y' } }],
    liked: [{ op: 'increment', path: '/likes' }],
    note: [],
  },
};

export async function putSchema(url: string, app: string, schema: JsonObject = tripSchema) {
  const response = await fetch(`${url}/apps/${app}/schema`, {
    method: 'PUT', body: JSON.stringify(schema), headers: { 'content-type': 'application/json' },
  });
  if (!response.ok) throw new Error(`PUT schema: ${response.status} ${await response.text()}`);
}

/** Polls `condition` every 10 ms until it holds, or fails after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string,
  timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a server again on the same port and data directory (after kill or stop). */
export function restart(server: RunningServer): Promise<RunningServer> {
  return startServer({ dataDir: server.dataDir, listen: `127.0.0.1:${server.port}` });
}

let rooms = 0;
/** A room name no other test uses. */
export const freshRoom = (prefix = 'room') => `${prefix}-${process.pid}-${++rooms}`;

/** One WebSocket a RoomClient opened, as the test saw it. */
export interface RecordedSocket {
  url: URL;
  openedAt: number;
  frames: JsonObject[];
  /** The close code, once closed (1006 for a refused upgrade). */
  closeCode?: number;
}

/**
 * A WebSocket constructor for RoomClientOptions.WebSocket: the `ws` package's,
 * recording every connection attempt and every frame the server sent, so a
 * test can count reconnects and see frames the client does not expose.
 */
export function recordingWebSocket() {
  const sockets: RecordedSocket[] = [];
  class Recording extends NodeWebSocket {
    constructor(address: string) {
      super(address);
      const socket: RecordedSocket = { url: new URL(address), openedAt: Date.now(), frames: [] };
      sockets.push(socket);
      this.addEventListener('message', (message) => {
        socket.frames.push(JSON.parse(String(message.data)) as JsonObject);
      });
      this.addEventListener('close', (close) => {
        socket.closeCode = close.code;
      });
    }
  }
  return {
    WebSocket: Recording as unknown as WebSocketLike,
    sockets,
    /** Every frame of `type` received on any connection, in order. */
    frames: (type: string) => sockets.flatMap((s) => s.frames.filter((f) => f['type'] === type)),
    /** Connection attempts made after `since` (Date.now()). */
    attemptsSince: (since: number) => sockets.filter((s) => s.openedAt >= since).length,
  };
}

export async function serverState(url: string, app: string, room: string, token?: string) {
  const headers: Record<string, string> = token ? { 'x-room-token': token } : {};
  const response = await fetch(`${url}/rooms/${app}/${room}/state`, { headers });
  if (!response.ok) throw new Error(`GET state: ${response.status} ${await response.text()}`);
  return (await response.json()) as { seq: number; hash: string; state: JsonObject };
}

/** Every committed event of a room, read in pages of 1,000. */
export async function serverEvents(url: string, app: string, room: string, token?: string) {
  const headers: Record<string, string> = token ? { 'x-room-token': token } : {};
  const events: RoomEvent[] = [];
  for (;;) {
    const after = events.length === 0 ? 0 : events[events.length - 1]!.seq;
    const response = await fetch(`${url}/rooms/${app}/${room}/events?after=${after}&limit=1000`,
      { headers });
    if (!response.ok) throw new Error(`GET events: ${response.status} ${await response.text()}`);
    const page = (await response.json()) as { events: RoomEvent[]; seq: number };
    events.push(...page.events);
    if (page.events.length === 0 || events[events.length - 1]!.seq >= page.seq) return events;
  }
}
