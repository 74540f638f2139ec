// SPDX-License-Identifier: Apache-2.0
// Helpers of the integration tests (not a test file): schemas, waiting for a
// condition, restarting a server on the same port and data directory.
import { startServer, type RunningServer } from '../support/server.js';
import type { JsonObject } from '../../src/types.js';

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
