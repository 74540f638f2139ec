// SPDX-License-Identifier: Apache-2.0
// RoomClient with room tokens (docs/api/rooms.md "Authorization") against a
// real `vellum serve` whose app has a secret: a token joins and reads over
// HTTP, a read-only token's submits are refused without losing the
// connection, a token function is asked again after an expiry, and a missing
// or refused fixed token stops with the server's code instead of looping.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { RoomClient, type RoomClientOptions } from '../../src/room_client.js';
import { MemoryOutboxStorage } from '../../src/storage/memory.js';
import type { ActionResult, Conflict, VellumError } from '../../src/types.js';
import {
  removeDataDir, startServer, vellumBinary, type RunningServer,
} from '../support/server.js';
import { freshRoom, putSchema, recordingWebSocket, serverState, sleep, until } from './helpers.js';

const app = 'secure';
const secret = 'js-client-test-secret-0123456789';
let server: RunningServer;
const clients: RoomClient[] = [];

before(async () => {
  server = await startServer({ args: ['--config', roomAppsConfig()] });
  await putSchema(server.url, app);
});
after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server.stop();
  removeDataDir(server);
});

/** A config file giving the app its secret (written next to the data directories). */
function roomAppsConfig(): string {
  const file = `${process.env['TMPDIR'] ?? '/tmp'}/vellum-js-tokens-${process.pid}.toml`;
  writeFileSync(file, `[[room_apps]]\napp = "${app}"\nsecret = "${secret}"\n`);
  return file;
}

interface Claims {
  room: string;
  participant: string;
  rights?: string[];
  /** Seconds from now; negative: expired that long ago. */
  expiresIn?: number;
}

/** A room token signed here as docs/api/rooms.md "Room tokens" says (HMAC-SHA256). */
function signToken(claims: Claims): string {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (claims.expiresIn ?? 3600);
  const body = { app, room: claims.room, participant: claims.participant,
    rights: claims.rights ?? ['read', 'write'], exp, iat: Math.min(now, exp) };
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  const signature = createHmac('sha256', secret).update(`v1.${payload}`).digest('base64url');
  return `v1.${payload}.${signature}`;
}

/** A token printed by `vellum room-token`, the tool an app's backend would use. */
function cliToken(room: string, participant: string): string {
  const made = spawnSync(vellumBinary(), ['room-token', '--app', app, '--room', room,
    '--participant', participant, '--secret-env', 'ROOM_SECRET'],
  { env: { ...process.env, ROOM_SECRET: secret }, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  return made.stdout.trim();
}

async function open(options: Partial<RoomClientOptions> & { room: string; participant: string }) {
  const client = await RoomClient.open({ url: server.url, app, ...options });
  clients.push(client);
  return client;
}

function record(client: RoomClient) {
  const results: ActionResult[] = [];
  const conflicts: Conflict[] = [];
  const errors: VellumError[] = [];
  client.on('result', (r) => results.push(r));
  client.on('conflict', (c) => conflicts.push(c));
  client.on('error', (e) => errors.push(e));
  return { results, conflicts, errors };
}

test('a token joins, submits, and goes along on HTTP reads (stateAt)', async () => {
  const room = freshRoom('token');
  const token = cliToken(room, 'ann');
  const ann = await open({ room, participant: 'ann', token });
  const log = record(ann);
  const id = ann.submit('trip_renamed', { title: 'Tokyo' });
  await ann.flush();
  assert.equal(log.results.find((r) => r.id === id)?.status, 'applied');
  const truth = await serverState(server.url, app, room, token);
  await until(() => ann.seq === truth.seq, 'ann at the server seq');
  assert.deepEqual(ann.state, truth.state);
  const past = await ann.stateAt(ann.seq);
  assert.deepEqual(past.state, truth.state);
  assert.deepEqual(log.errors, []);
});

test('a read-only token: its submits are rejected (forbidden), the connection stays', async () => {
  const room = freshRoom('readonly');
  const recorder = recordingWebSocket();
  const reader = await open({ room, participant: 'rita', WebSocket: recorder.WebSocket,
    token: signToken({ room, participant: 'rita', rights: ['read'] }) });
  const writer = await open({ room, participant: 'walt',
    token: signToken({ room, participant: 'walt' }) });
  const log = record(reader);
  const first = reader.submit('trip_renamed', { title: 'Mine' });
  assert.equal(reader.state['title'], 'Mine', 'shown at once, as any action');
  await reader.flush();
  const second = reader.submit('liked');
  await reader.flush();

  assert.deepEqual(log.results.map((r) => r.status === 'rejected' && [r.id, r.error.code]),
    [[first, 'forbidden'], [second, 'forbidden']]);
  assert.deepEqual(log.conflicts.map((c) => [c.action.id, c.reason]),
    [[first, 'rejected'], [second, 'rejected']]);
  assert.equal(reader.state['title'], undefined, 'the refused rename left the view');
  assert.equal(reader.pendingCount, 0);
  assert.equal(reader.status, 'live');
  assert.equal(recorder.sockets.length, 1, 'the same connection throughout');
  assert.equal(recorder.sockets[0]!.closeCode, undefined);
  // It still reads: the writer's action reaches it.
  writer.submit('trip_renamed', { title: 'Walt\'s' });
  await writer.flush();
  await until(() => reader.state['title'] === 'Walt\'s', 'the reader sees the writer');
});

test('an expired token from a token function: the function is asked again and gets in',
  async () => {
    const room = freshRoom('expired');
    const recorder = recordingWebSocket();
    let calls = 0;
    let expiredNext = 1;  // how many expired tokens the backend hands out next
    const token = () => {
      calls++;
      const expired = expiredNext > 0;
      expiredNext--;
      return signToken({ room, participant: 'ann', expiresIn: expired ? -3600 : 3600 });
    };
    const ann = await open({ room, participant: 'ann', token, WebSocket: recorder.WebSocket });
    assert.equal(ann.status, 'live');
    assert.equal(calls, 2, 'asked once per join attempt');
    assert.equal(recorder.sockets.length, 2);
    assert.equal(recorder.sockets[0]!.closeCode, 1006, 'the first upgrade was refused');

    // Later the connection drops and the token in hand has expired meanwhile.
    const log = record(ann);
    ann.disconnect();
    expiredNext = 1;
    const id = ann.submit('liked');
    ann.connect();
    await ann.flush();
    assert.equal(log.results.find((r) => r.id === id)?.status, 'applied');
    assert.deepEqual(log.errors.map((e) => e.code), ['token_expired']);
    assert.equal(calls, 4);
    assert.equal(ann.status, 'live');
  });

test('no token: open() fails with token_missing, and nothing retries', async () => {
  const room = freshRoom('missing');
  const recorder = recordingWebSocket();
  await assert.rejects(
    RoomClient.open({ url: server.url, app, room, participant: 'ann',
      WebSocket: recorder.WebSocket }),
    { name: 'VellumError', code: 'token_missing' });
  await sleep(1_500);
  assert.equal(recorder.sockets.length, 1, 'one attempt, no reconnect loop');
});

test('a fixed token that expired, with a cached room: an error and offline, no loop',
  async () => {
    const room = freshRoom('cached');
    const storage = new MemoryOutboxStorage();
    const earlier = await RoomClient.open({ url: server.url, app, room, participant: 'ann',
      storage, token: signToken({ room, participant: 'ann' }) });
    earlier.submit('trip_renamed', { title: 'Cached' });
    await earlier.flush();
    await earlier.close();

    const recorder = recordingWebSocket();
    const ann = await open({ room, participant: 'ann', storage, WebSocket: recorder.WebSocket,
      token: signToken({ room, participant: 'ann', expiresIn: -3600 }) });
    assert.equal(ann.state['title'], 'Cached', 'open() resolved from the cached room');
    const log = record(ann);
    const statuses: string[] = [];
    ann.on('status', (s) => statuses.push(s));
    await until(() => log.errors.length > 0, 'the refusal');
    assert.equal(log.errors[0]!.code, 'token_expired');
    assert.match(log.errors[0]!.message, /^token_expired: /);
    await sleep(1_500);
    assert.equal(recorder.sockets.length, 1, 'one attempt, no reconnect loop');
    assert.equal(ann.status, 'offline');
    assert.deepEqual(statuses, ['offline']);
    ann.submit('liked');  // still usable offline: queued for a later connect()
    assert.equal(ann.pendingCount, 1);
  });

test('a fixed token that expires mid-session: a refused HTTP submit waits, no retry loop',
  async () => {
    const room = freshRoom('expiring');
    // Accepted for 2 to 3 s more: the server allows 60 s of clock skew and
    // compares whole seconds.
    const token = signToken({ room, participant: 'ann', expiresIn: -58 });
    const ann = await open({ room, participant: 'ann', token });
    const log = record(ann);
    await sleep(3_500);
    // Too large for a WebSocket message: it goes over HTTP, with the expired token.
    const id = ann.submit('note', { text: 'x'.repeat(70 * 1024) });
    await sleep(3_500);
    const refusals = log.errors.filter((e) => e.code === 'token_expired');
    assert.equal(refusals.length, 1, `refusals: ${refusals.map((e) => e.message).join('; ')}`);
    assert.equal(ann.pendingCount, 1, 'the action is kept for the next join');
    assert.ok(!log.results.some((r) => r.id === id), 'no result yet: it was never answered');
  });
