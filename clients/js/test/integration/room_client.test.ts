// SPDX-License-Identifier: Apache-2.0
// RoomClient against a real `vellum serve`: convergence, conflicts, coalescing,
// resume, verify/reset, rejections, presence and time travel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RoomState } from '../../src/reducer/index.js';
import { RoomClient, type RoomClientOptions } from '../../src/room_client.js';
import type { ActionResult, Conflict, JsonObject, RoomEvent } from '../../src/types.js';
import { removeDataDir, startServer, type RunningServer } from '../support/server.js';
import { freshRoom, putSchema, until } from './helpers.js';

const app = 'trips';
let server: RunningServer;
const clients: RoomClient[] = [];

before(async () => {
  server = await startServer();
  await putSchema(server.url, app);
});
after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server.stop();
  removeDataDir(server);
});

async function open(room: string, participant: string, extra: Partial<RoomClientOptions> = {}) {
  const client = await RoomClient.open({ url: server.url, app, room, participant, ...extra });
  clients.push(client);
  return client;
}

/** Records every result and conflict of a client. */
function record(client: RoomClient) {
  const results: ActionResult[] = [];
  const conflicts: Conflict[] = [];
  const events: RoomEvent[] = [];
  client.on('result', (r) => results.push(r));
  client.on('conflict', (c) => conflicts.push(c));
  client.on('event', (e) => events.push(e));
  return { results, conflicts, events };
}

async function serverEvents(room: string, after = 0): Promise<RoomEvent[]> {
  const url = `${server.url}/rooms/${app}/${room}/events?after=${after}&limit=1000`;
  const response = await fetch(url);
  return ((await response.json()) as { events: RoomEvent[] }).events;
}

async function serverState(room: string) {
  const response = await fetch(`${server.url}/rooms/${app}/${room}/state`);
  return (await response.json()) as { seq: number; hash: string; state: JsonObject };
}

test('two clients converge on the server state, each action with one result', async () => {
  const room = freshRoom('converge');
  const ann = await open(room, 'ann', { name: 'Ann' });
  const bob = await open(room, 'bob');
  const annLog = record(ann);
  const bobLog = record(bob);
  const a1 = ann.submit('trip_renamed', { title: 'Tokyo' });
  assert.equal(ann.state['title'], 'Tokyo', 'applied locally at once');
  const b1 = bob.submit('activity_added', { activityId: 'act-1', name: 'Sushi' });
  const b2 = bob.submit('vote_cast', { activityId: 'act-1' });
  const a2 = ann.submit('vote_cast', { activityId: 'act-1' });
  await Promise.all([ann.flush(), bob.flush()]);
  const truth = await serverState(room);
  await until(() => ann.seq === truth.seq && bob.seq === truth.seq, 'both at the server seq');
  assert.deepEqual(ann.state, truth.state);
  assert.deepEqual(bob.state, truth.state);
  assert.deepEqual(ann.confirmedState, truth.state);
  assert.equal(ann.optimistic.confirmed.stateHash(), truth.hash);
  assert.deepEqual((truth.state['votes'] as JsonObject)['act-1'], ['ann', 'bob']);
  assert.deepEqual(annLog.results.map((r) => r.id).sort(), [a1, a2].sort());
  assert.deepEqual(bobLog.results.map((r) => r.id).sort(), [b1, b2].sort());
  assert.ok(annLog.results.every((r) => r.status === 'applied' || r.status === 'merged'));
  assert.equal(ann.pendingCount, 0);
  assert.equal(ann.status, 'live');
  assert.ok(bobLog.events.some((e) => e.id === a1), 'bob saw ann\'s event');
});

test('a concurrent lww write that loses is reported to its author as superseded', async () => {
  const room = freshRoom('conflict');
  const ann = await open(room, 'ann');
  const bob = await open(room, 'bob');
  const annLog = record(ann);
  const bobLog = record(bob);
  ann.disconnect();
  for (let i = 0; i < 3; i++) bob.submit('note');  // bob's clock moves ahead
  const winner = bob.submit('trip_renamed', { title: 'Bob\'s trip' });
  await bob.flush();
  const loser = ann.submit('trip_renamed', { title: 'Ann\'s trip' });  // made without seeing bob's
  assert.equal(ann.state['title'], 'Ann\'s trip');
  ann.connect();
  await ann.flush();
  const result = annLog.results.find((r) => r.id === loser);
  assert.deepEqual(result && { status: result.status, by: 'by' in result && result.by },
    { status: 'superseded', by: winner });
  assert.equal(annLog.conflicts.length, 1);
  assert.equal(annLog.conflicts[0]!.reason, 'superseded');
  assert.equal(annLog.conflicts[0]!.action.id, loser);
  assert.equal(annLog.conflicts[0]!.by, winner);
  assert.equal(ann.state['title'], 'Bob\'s trip');
  assert.equal(bobLog.conflicts.length, 0);
  await until(() => bob.seq === ann.seq, 'bob has ann\'s event');
  assert.deepEqual(bob.state, ann.state);
});

test('50 drag updates within the window become one event on the server', async () => {
  const room = freshRoom('drag');
  const ann = await open(room, 'ann');
  const log = record(ann);
  const ids: string[] = [];
  for (let x = 0; x < 50; x++) {
    ids.push(ann.submit('pin_moved', { pin: 'p1', x, y: 2 * x }, { coalesceKey: 'pin:p1' }));
    assert.deepEqual((ann.state['pins'] as JsonObject)['p1'], { x, y: 2 * x }, 'shown at once');
  }
  await ann.flush();
  const events = await serverEvents(room);
  const moves = events.filter((e) => e.action === 'pin_moved');
  assert.equal(moves.length, 1);
  assert.equal(moves[0]!.id, ids[49]);
  assert.deepEqual(moves[0]!.payload, { pin: 'p1', x: 49, y: 98 });
  assert.equal(ann.stats.actionsCoalesced, 49);
  assert.equal(ann.stats.actionsSubmitted, 50);
  assert.equal(ann.stats.actionsSent, 1);
  assert.deepEqual(log.results.map((r) => r.id), [ids[49]]);
  assert.equal(events.filter((e) => e.participant === 'ann' && !e.system).length, 1);
});

test('a reconnect resumes from the last seq: only the missed events arrive', async () => {
  const room = freshRoom('resume');
  const ann = await open(room, 'ann');
  const bob = await open(room, 'bob');
  await until(() => ann.seq === bob.seq && ann.seq >= 2, 'both joined');
  ann.disconnect();
  const seqBefore = ann.seq;
  for (let i = 0; i < 5; i++) bob.submit('liked');
  await bob.flush();
  const log = record(ann);
  let snapshots = 0;
  const reset = ann.optimistic.reset.bind(ann.optimistic);
  ann.optimistic.reset = (...args) => {
    snapshots++;
    return reset(...args);
  };
  ann.connect();
  await until(() => ann.status === 'live', 'ann live again');
  const missed = await serverEvents(room, seqBefore);
  await until(() => ann.seq >= missed[missed.length - 1]!.seq, 'ann caught up');
  const upToLive = log.events.filter((e) => e.seq <= missed[missed.length - 1]!.seq);
  assert.deepEqual(upToLive.map((e) => e.seq), missed.map((e) => e.seq));
  assert.equal(upToLive[0]!.seq, seqBefore + 1);
  assert.equal(snapshots, 0, 'no snapshot: the events were cheaper');
  assert.equal(ann.state['likes'], 5);
});

test('a confirmed state that disagrees with the server is reset by verify', async () => {
  const room = freshRoom('verify');
  const ann = await open(room, 'ann', { verifyEvery: 0 });
  ann.submit('trip_renamed', { title: 'Kyoto' });
  await ann.flush();
  const truth = await serverState(room);
  await until(() => ann.seq === truth.seq, 'ann at the server seq');
  // Tamper: a confirmed state with an event the server never had.
  const room0 = ann.optimistic;
  const tampered = RoomState.fromJSON(room0.schema, room0.confirmed.toJSON());
  tampered.apply({ seq: room0.confirmedSeq, id: 'forged', action: 'trip_renamed',
    payload: { title: 'HACKED' }, lamport: 1_000, participant: 'mallory', serverTime: '1' });
  room0.reset(room0.confirmedSeq, room0.clock, tampered.toJSON());
  assert.equal(ann.state['title'], 'HACKED');
  assert.notEqual(room0.confirmed.stateHash(), truth.hash);
  ann.verify();
  await until(() => ann.state['title'] === 'Kyoto', 'the reset from the server snapshot');
  assert.equal(ann.optimistic.confirmed.stateHash(), truth.hash);
});

test('an action the server refuses: a rejected result and a conflict, never dropped', async () => {
  const room = freshRoom('rejected');
  const ann = await open(room, 'ann');
  const log = record(ann);
  assert.throws(() => ann.submit('no_such_action'), { code: 'invalid_argument' });
  const big = ann.submit('note', { text: 'x'.repeat(70 * 1024) });  // over 64 KiB
  const fine = ann.submit('liked');
  await ann.flush();
  const rejected = log.results.find((r) => r.id === big);
  assert.equal(rejected?.status, 'rejected');
  assert.equal(rejected?.status === 'rejected' && rejected.error.code, 'payload_too_large');
  assert.equal(log.conflicts.length, 1);
  assert.equal(log.conflicts[0]!.reason, 'rejected');
  assert.equal(log.conflicts[0]!.action.id, big);
  assert.equal(log.results.find((r) => r.id === fine)?.status, 'applied');
  assert.equal(log.results.length, 2);
  assert.equal(ann.pendingCount, 0);
});

test('presence reaches the other participants; stateAt reads the past', async () => {
  const room = freshRoom('presence');
  const ann = await open(room, 'ann', { name: 'Ann' });
  const bob = await open(room, 'bob', { name: 'Bob' });
  ann.setPresence({ cursor: [3, 4] });
  await until(() => bob.participants.some((p) => p.participant === 'ann' &&
    JSON.stringify(p.state) === '{"cursor":[3,4]}'), 'bob sees ann\'s cursor');
  assert.equal(bob.participants.find((p) => p.participant === 'ann')?.name, 'Ann');
  ann.submit('trip_renamed', { title: 'First' });
  await ann.flush();
  const seqFirst = ann.seq;
  ann.submit('trip_renamed', { title: 'Second' });
  await ann.flush();
  const past = await ann.stateAt(seqFirst);
  assert.equal(past.seq, seqFirst);
  assert.equal(past.state['title'], 'First');
  assert.equal((await ann.stateAt(new Date()))['state']['title'], 'Second');
});

test('a burst of 500 actions goes out in a few submit frames, none over the message limit',
  async () => {
    const room = freshRoom('burst');
    const ann = await open(room, 'ann');
    const log = record(ann);
    const framesBefore = ann.stats.framesSent;
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) {
      ids.push(ann.submit('activity_added', { activityId: `act-${i}`, name: 'n'.repeat(1000) }));
    }
    await ann.flush();
    assert.equal(log.results.length, 500);
    assert.ok(log.results.every((r) => r.status === 'applied' || r.status === 'merged'));
    const frames = ann.stats.framesSent - framesBefore;
    // 500 events of ~1.1 KiB: about 10 frames of under 64 KiB, not 500 frames.
    assert.ok(frames >= 9 && frames <= 20, `${frames} frames`);
    assert.equal((ann.state['activities'] as JsonObject[]).length, 500);
    const events = await serverEvents(room);
    assert.equal(new Set(events.map((e) => e.id)).size, events.length);
  });
