// SPDX-License-Identifier: Apache-2.0
// The outbox end to end: actions made offline survive a SIGKILLed process and
// a killed server, and each reaches the room exactly once with one result.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RoomClient } from '../../src/room_client.js';
import { FileOutboxStorage } from '../../src/storage/file.js';
import type { ActionResult, RoomEvent } from '../../src/types.js';
import { removeDataDir, startServer, type RunningServer } from '../support/server.js';
import { freshRoom, putSchema, restart, until } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const app = 'trips';
let server: RunningServer;
const directory = mkdtempSync(path.join(tmpdir(), 'vellum-js-outbox-'));

before(async () => {
  server = await startServer();
  await putSchema(server.url, app);
});
after(async () => {
  await server.stop();
  removeDataDir(server);
  rmSync(directory, { recursive: true, force: true });
});

async function serverEvents(room: string): Promise<RoomEvent[]> {
  const response = await fetch(`${server.url}/rooms/${app}/${room}/events?after=0&limit=1000`);
  return ((await response.json()) as { events: RoomEvent[] }).events;
}

/** Asserts that each id is committed exactly once and has exactly one result. */
async function assertExactlyOnce(room: string, ids: string[], results: ActionResult[]) {
  const events = await serverEvents(room);
  for (const id of ids) {
    assert.equal(events.filter((e) => e.id === id).length, 1, `event ${id} committed once`);
    assert.equal(results.filter((r) => r.id === id).length, 1, `one result for ${id}`);
  }
  assert.ok(results.every((r) => r.status !== 'rejected'), JSON.stringify(results));
}

/** Runs the child until its offline actions are durable, then SIGKILLs it. */
async function offlineChild(room: string, file: string, count: number) {
  const child = spawn(process.execPath, [path.join(here, 'room_client_child.js'), server.url,
    app, room, file, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('\n')) resolve(output.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  return JSON.parse(line) as { ids: string[]; seq: number };
}

test('offline actions survive a SIGKILLed process and arrive exactly once', async () => {
  const room = freshRoom('crash');
  const file = path.join(directory, 'carol.outbox');
  const { ids } = await offlineChild(room, file, 3);
  assert.equal((await serverEvents(room)).filter((e) => e.participant === 'carol' &&
    !e.system).length, 0, 'nothing was sent while offline');

  const storage = new FileOutboxStorage(file);
  const results: ActionResult[] = [];
  const client = await RoomClient.open({ url: server.url, app, room, participant: 'carol',
    storage });
  client.on('result', (r) => results.push(r));
  assert.equal(client.pendingCount, ids.length, 'the restarted process shows the offline edits');
  assert.equal(client.state['title'], 'offline title');
  await client.flush();
  await assertExactlyOnce(room, ids, results);
  assert.equal(client.state['likes'], 3);
  assert.equal(client.confirmedState['title'], 'offline title');
  await client.close();
  assert.equal((await storage.load()).length, 0, 'the outbox is empty');
  await storage.close();
});

test('a killed server: pending actions wait, an offline start shows the room, then exactly once',
  async () => {
    const room = freshRoom('restart');
    const file = path.join(directory, 'dave.outbox');
    let storage = new FileOutboxStorage(file);
    const options = { url: server.url, app, room, participant: 'dave',
      reconnect: { minDelayMs: 50, maxDelayMs: 300 } };
    let client = await RoomClient.open({ ...options, storage });
    const results: ActionResult[] = [];
    client.on('result', (r) => results.push(r));
    const ids = [client.submit('trip_renamed', { title: 'Before' })];
    await client.flush();
    // Some of these are in flight when the server dies: their acks are lost.
    for (let i = 0; i < 20; i++) ids.push(client.submit('liked'));
    await client.persist();
    await server.kill();
    await until(() => client.status !== 'live', 'the client notices');
    for (let i = 0; i < 5; i++) ids.push(client.submit('liked'));
    await client.close();
    await storage.close();

    // A new process while the server is down: the room comes from the cache.
    storage = new FileOutboxStorage(file);
    client = await RoomClient.open({ ...options, storage });
    client.on('result', (r) => results.push(r));
    assert.equal(client.status === 'live', false);
    assert.equal(client.state['title'], 'Before');
    assert.equal(client.state['likes'], 25);

    server = await restart(server);
    await client.flush();
    await assertExactlyOnce(room, ids, results);
    assert.equal(client.state['likes'], 25);
    assert.equal(client.confirmedState['likes'], 25);
    await client.close();
    await storage.close();
  });
