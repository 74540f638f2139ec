// SPDX-License-Identifier: Apache-2.0
// RoomClient against a real `vellum serve`, the protocol's less travelled
// paths (docs/api/rooms.md "Protocol"): a schema change while joined and while
// away, close 4001 (replaced), close 4003 (room full), the submit rate limit.
// A recording WebSocket counts the client's connection attempts and shows the
// frames the client does not expose.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RoomClient, type RoomClientOptions } from '../../src/room_client.js';
import { MemoryOutboxStorage } from '../../src/storage/memory.js';
import type { ActionResult, Conflict, JsonObject, VellumError } from '../../src/types.js';
import { removeDataDir, startServer, type RunningServer } from '../support/server.js';
import {
  freshRoom, putSchema, recordingWebSocket, serverEvents, serverState, sleep, tripSchema, until,
} from './helpers.js';

let server: RunningServer;
const clients: RoomClient[] = [];

before(async () => {
  server = await startServer();
});
after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server.stop();
  removeDataDir(server);
});

async function open(options: Partial<RoomClientOptions> & { app: string; room: string;
  participant: string }, on: RunningServer = server) {
  const client = await RoomClient.open({ url: on.url, ...options });
  clients.push(client);
  return client;
}

/** Records a client's results, conflicts, errors and status changes. */
function record(client: RoomClient) {
  const results: ActionResult[] = [];
  const conflicts: Conflict[] = [];
  const errors: VellumError[] = [];
  const statuses: string[] = [];
  client.on('result', (r) => results.push(r));
  client.on('conflict', (c) => conflicts.push(c));
  client.on('error', (e) => errors.push(e));
  client.on('status', (s) => statuses.push(s));
  return { results, conflicts, errors, statuses };
}

/** The trip schema, version 2: likes are gone (action and policy), a budget is new. */
const tripSchemaV2: JsonObject = (() => {
  const policies: JsonObject = { ...(tripSchema['policies'] as JsonObject), '/budget': 'lww' };
  const actions: JsonObject = { ...(tripSchema['actions'] as JsonObject),
    budget_set: [{ op: 'set', path: '/budget', value: '$payload.amount' }] };
  delete policies['/likes'];
  delete actions['liked'];
  return { policies, actions };
})();

function statusOf(results: ActionResult[], id: string): string | undefined {
  const result = results.find((r) => r.id === id);
  return result?.status === 'rejected' ? `rejected:${result.error.code}` : result?.status;
}

test('a schema change while joined: the snapshot resets the state, pending actions stay on top',
  async () => {
    const app = 'schema-live';
    await putSchema(server.url, app);
    const room = freshRoom('schema-live');
    const recorder = recordingWebSocket();
    // A long coalescing window keeps keyed actions pending (unsent) across the change.
    const ann = await open({ app, room, participant: 'ann', WebSocket: recorder.WebSocket,
      coalesceWindowMs: 60_000 });
    const bob = await open({ app, room, participant: 'bob' });
    const log = record(ann);
    ann.submit('liked');
    ann.submit('trip_renamed', { title: 'Tokyo' });
    await ann.flush();
    const rename = ann.submit('trip_renamed', { title: 'Kyoto' }, { coalesceKey: 'title' });
    const like = ann.submit('liked', {}, { coalesceKey: 'likes' });
    assert.equal(ann.state['likes'], 2);
    assert.equal(ann.pendingCount, 2);

    await putSchema(server.url, app, tripSchemaV2);
    await until(() => !('likes' in ann.state), 'ann\'s view under the new schema');
    const snapshot = recorder.frames('snapshot').find((f) => f['reason'] === 'schema');
    assert.equal(snapshot?.['schemaVersion'], 2);
    assert.equal(ann.state['title'], 'Kyoto', 'the pending rename is re-applied on top');
    assert.equal(ann.confirmedState['title'], 'Tokyo');
    assert.equal(ann.pendingCount, 2, 'the refused like is out of the view, not forgotten');
    assert.equal(recorder.sockets.length, 1, 'no reconnect: the snapshot was enough');
    const budget = ann.submit('budget_set', { amount: 1200 });  // an action of the new schema

    await ann.flush();
    assert.equal(statusOf(log.results, rename), 'applied');
    assert.equal(statusOf(log.results, budget), 'applied');
    assert.equal(statusOf(log.results, like), 'rejected:unknown_action');
    assert.deepEqual(log.conflicts.map((c) => [c.action.id, c.reason]), [[like, 'rejected']]);
    assert.equal(log.results.length, 5);
    const truth = await serverState(server.url, app, room);
    await until(() => ann.seq === truth.seq && bob.seq === truth.seq, 'both at the server seq');
    assert.deepEqual(ann.state, truth.state);
    assert.deepEqual(ann.confirmedState, truth.state);
    assert.equal(ann.optimistic.confirmed.stateHash(), truth.hash);
    assert.deepEqual(bob.state, truth.state);
    assert.deepEqual(truth.state, { title: 'Kyoto', budget: 1200 });
  });

test('a schema change while away: the client rejoins from seq 0 under the new schema',
  async () => {
    const app = 'schema-away';
    await putSchema(server.url, app);
    const room = freshRoom('schema-away');
    const recorder = recordingWebSocket();
    const ann = await open({ app, room, participant: 'ann', WebSocket: recorder.WebSocket });
    const bob = await open({ app, room, participant: 'bob' });
    const log = record(ann);
    bob.submit('liked');
    bob.submit('trip_renamed', { title: 'Osaka' });
    await bob.flush();
    await until(() => ann.seq === bob.seq, 'ann has bob\'s events');
    ann.disconnect();
    const like = ann.submit('liked');
    const rename = ann.submit('trip_renamed', { title: 'Nara' });
    await putSchema(server.url, app, tripSchemaV2);
    await until(() => !('likes' in bob.state), 'bob under the new schema');
    bob.submit('budget_set', { amount: 900 });
    await bob.flush();

    ann.connect();
    await ann.flush();
    const truth = await serverState(server.url, app, room);
    await until(() => ann.seq === truth.seq, 'ann at the server seq');
    assert.deepEqual(ann.state, truth.state);
    assert.equal(ann.optimistic.confirmed.stateHash(), truth.hash);
    assert.deepEqual(truth.state, { title: 'Nara', budget: 900 });
    assert.equal(statusOf(log.results, rename), 'applied');
    assert.equal(statusOf(log.results, like), 'rejected:unknown_action');
    const [, stale, fresh] = recorder.sockets;
    assert.equal(stale?.frames[0]?.['schemaVersion'], 2, 'the welcome told of the new schema');
    assert.equal(fresh?.url.searchParams.get('lastSeq'), '0', 'the rejoin starts from nothing');
    assert.equal(recorder.sockets.length, 3);
  });

test('close 4001: a client replaced by a newer connection of its participant does not fight',
  async () => {
    const app = 'trips';
    await putSchema(server.url, app);
    const room = freshRoom('replaced');
    const first = recordingWebSocket();
    const second = recordingWebSocket();
    const older = await open({ app, room, participant: 'ann', WebSocket: first.WebSocket });
    const olderLog = record(older);
    const newer = await open({ app, room, participant: 'ann', WebSocket: second.WebSocket });
    const newerLog = record(newer);
    await until(() => olderLog.errors.some((e) => e.code === 'replaced'), 'the replaced error');
    assert.equal(first.sockets[0]!.closeCode, 4001);
    assert.equal(older.status, 'offline');

    const since = Date.now();
    await sleep(2_000);
    assert.equal(first.attemptsSince(since), 0, 'no reconnect after 4001');
    assert.equal(second.sockets.length, 1);
    assert.equal(newer.status, 'live');
    assert.deepEqual(newerLog.errors, []);

    // The older one queues actions; connect() takes over again, and now the newer one yields.
    const id = older.submit('liked');
    older.connect();
    await older.flush();
    assert.equal(statusOf(olderLog.results, id), 'applied');
    await until(() => newerLog.errors.some((e) => e.code === 'replaced'), 'the newer replaced');
    assert.equal(second.sockets[0]!.closeCode, 4001);
    const settled = Date.now();
    await sleep(500);
    assert.equal(first.attemptsSince(settled) + second.attemptsSince(settled), 0);
    assert.equal(older.status, 'live');
  });

test('close 4003: a full room is reported, retried slowly, and joined once a slot frees',
  async () => {
    const small = await startServer({ args: ['--rooms-max-participants', '2'] });
    try {
      const app = 'trips';
      await putSchema(small.url, app);
      const room = freshRoom('full');
      // Carol was here before: her room is cached, so open() resolves while the room is full.
      const storage = new MemoryOutboxStorage();
      const earlier = await RoomClient.open({ url: small.url, app, room, participant: 'carol',
        storage });
      await earlier.close();
      const ann = await open({ app, room, participant: 'ann' }, small);
      await open({ app, room, participant: 'bob' }, small);

      const recorder = recordingWebSocket();
      const carol = await open({ app, room, participant: 'carol', storage,
        WebSocket: recorder.WebSocket, reconnect: { minDelayMs: 50, maxDelayMs: 1_000 } }, small);
      const log = record(carol);
      await until(() => log.errors.some((e) => e.code === 'room_full'), 'the room_full error');
      await until(() => recorder.sockets[0]!.closeCode !== undefined, 'the close');
      assert.equal(recorder.sockets[0]!.closeCode, 4003);
      const since = Date.now();
      await sleep(2_000);
      const attempts = recorder.attemptsSince(since);
      assert.ok(attempts >= 1 && attempts <= 4, `${attempts} attempts in 2 s: slow, not given up`);
      assert.notEqual(carol.status, 'live');
      const id = carol.submit('liked');  // queued while out

      await ann.close();
      await until(() => carol.status === 'live', 'carol in once ann left', 5_000);
      await carol.flush();
      assert.equal(statusOf(log.results, id), 'applied');
      assert.equal(carol.participants.filter((p) => p.connected).length, 2);
    } finally {
      await Promise.all(clients.splice(0).map((client) => client.close()));
      await small.stop();
      removeDataDir(small);
    }
  });

test('a flood of submits is paced under the server\'s 50/s, burst 100: never rate limited',
  async () => {
    const app = 'trips';
    await putSchema(server.url, app);
    const room = freshRoom('flood');
    const recorder = recordingWebSocket();
    const ann = await open({ app, room, participant: 'ann', WebSocket: recorder.WebSocket });
    const log = record(ann);
    const framesBefore = ann.stats.framesSent;
    // 12,000 actions are 120 full submit frames: sent at once, 20 over the server's burst.
    const count = 12_000;
    for (let i = 0; i < count; i++) ann.submit('liked');
    await ann.flush(60_000);
    assert.deepEqual(recorder.frames('error'), [], 'no rate_limited (or other) error frame');
    assert.equal(recorder.sockets.length, 1, 'no 4429 close, no reconnect');
    assert.deepEqual(log.errors, []);
    assert.equal(new Set(log.results.map((r) => r.id)).size, count);
    assert.equal(log.results.length, count, 'one result per action');
    assert.ok(log.results.every((r) => r.status === 'applied' || r.status === 'merged'));
    assert.ok(ann.stats.framesSent - framesBefore >= 120);
    assert.equal(ann.state['likes'], count);
  });

test('verifies during a flood: snapshots never run past their seq, nothing is applied twice',
  async () => {
  const app = 'trips';
  await putSchema(server.url, app);
  const room = freshRoom('ahead');
  const recorder = recordingWebSocket();
  // Ann verifies after every events frame while she and Bob flood the room,
  // so verifies and joins meet appends in flight. The server answers them at
  // the committed state only (a snapshot holding in-flight events under the
  // committed seq once made clients apply those events twice); the client
  // also guards against it (it resets to max(seq, the state's seqMax)).
  const ann = await open({ app, room, participant: 'ann', WebSocket: recorder.WebSocket,
    verifyEvery: 1 });
  const bob = await open({ app, room, participant: 'bob' });
  const seen: Array<[seq: number, likes: number]> = [];
  ann.on('change', () => seen.push([ann.seq, Number(ann.confirmedState['likes'] ?? 0)]));
  for (let wave = 0; wave < 40; wave++) {  // waves: verifies come between the appends
    for (let i = 0; i < 100; i++) {
      ann.submit('liked');
      bob.submit('liked');
    }
    await sleep(20);
  }
  await Promise.all([ann.flush(60_000), bob.flush(60_000)]);
  const truth = await serverState(server.url, app, room);
  await until(() => ann.seq === truth.seq, 'ann at the server seq');

  const answered = recorder.frames('verified').length + recorder.frames('unverified').length;
  assert.ok(answered > 10, `verifies were answered (${answered}; else this test is void)`);
  const ahead = recorder.frames('snapshot').filter((frame) =>
    ((frame['reducerState'] as JsonObject)['seqMax'] as number) > (frame['seq'] as number));
  assert.deepEqual(ahead.map((frame) => frame['seq']), [], 'snapshots past their seq');
  // At every confirmed seq, the confirmed likes are the likes committed up to
  // it: an event applied twice would count more.
  const likesUpTo = [0];
  for (const event of await serverEvents(server.url, app, room)) {
    likesUpTo[event.seq] = likesUpTo[event.seq - 1]! + (event.system ? 0 : 1);
  }
  const wrong = seen.filter(([seq, likes]) => likes !== likesUpTo[seq]);
  assert.deepEqual(wrong.slice(0, 3).map(([seq, likes]) => `${likes} likes at seq ${seq}`), []);
  assert.equal(ann.optimistic.confirmed.stateHash(), truth.hash);
  assert.deepEqual(ann.state, truth.state);
});

test('rate_limited anyway (a server slower than assumed): nothing is dropped or doubled',
  async () => {
    const slow = await startServer({ args: ['--rooms-submits-per-second', '5',
      '--rooms-submit-burst', '10'] });
    try {
      const app = 'trips';
      await putSchema(slow.url, app);
      const room = freshRoom('limited');
      const recorder = recordingWebSocket();
      const ann = await open({ app, room, participant: 'ann', WebSocket: recorder.WebSocket,
        reconnect: { minDelayMs: 50, maxDelayMs: 1_000 } }, slow);
      const log = record(ann);
      const count = 2_000;  // 20 submit frames: 10 over the server's burst
      const ids = new Set<string>();
      for (let i = 0; i < count; i++) ids.add(ann.submit('liked'));
      await ann.flush(60_000);
      assert.ok(log.errors.some((e) => e.code === 'rate_limited'), 'the server did refuse');
      assert.equal(log.results.length, count);
      assert.deepEqual(new Set(log.results.map((r) => r.id)), ids, 'one result per action');
      assert.ok(log.results.every((r) => r.status === 'applied' || r.status === 'merged'));
      const events = (await serverEvents(slow.url, app, room)).filter((e) => !e.system);
      assert.equal(events.length, count, 'each action committed exactly once');
      assert.equal(ann.state['likes'], count);
    } finally {
      await Promise.all(clients.splice(0).map((client) => client.close()));
      await slow.stop();
      removeDataDir(slow);
    }
  });
