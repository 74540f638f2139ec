// SPDX-License-Identifier: Apache-2.0
// OptimisticRoom: pending actions show at once, committed events rebase them, own echoes and
// answers turn them into exactly one result, and losers become conflicts without the view
// flip-flopping (seed 002).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { OptimisticRoom } from '../../src/optimistic.js';
import { RoomState, Schema } from '../../src/reducer/index.js';
import { type JsonObject, type RoomEvent, VellumError } from '../../src/types.js';
import { loadVector } from './support/vectors.js';

const schema = Schema.parse({
  policies: { '/title': 'lww', '/members': 'set', '/activities': 'list', '/steps/*': 'counter',
    '/best/*': 'max' },
  actions: {
    titled: [{ op: 'set', path: '/title', value: '$payload.title' }],
    joined: [{ op: 'add', path: '/members', value: '$participant' }],
    left: [{ op: 'remove', path: '/members', value: '$participant' }],
    added: [{ op: 'insert', path: '/activities', value: { id: '$payload.id' } }],
    removed: [{ op: 'delete', path: '/activities', value: '$payload.id' }],
    walked: [{ op: 'increment', path: '/steps/{participant}', value: '$payload.steps' },
      { op: 'max', path: '/best/{participant}', value: '$payload.steps' }],
  },
});

const TIME = 1767225600000000000n;

// A committed event as the server broadcasts it (outcome included).
function committed(seq: number, participant: string, action: string, payload: JsonObject,
  lamport: number, extra: Partial<RoomEvent> = {}): RoomEvent {
  return { seq, id: `e${seq}`, action, payload, lamport, participant,
    serverTime: (TIME + BigInt(seq)).toString(), outcome: 'applied', clock: lamport + 1,
    ...extra };
}

// The committed echo of a pending action.
function echo(room: OptimisticRoom, id: string, seq: number, extra: Partial<RoomEvent> = {}):
  RoomEvent {
  const action = room.pending.find((pending) => pending.id === id);
  assert.ok(action, `${id} is pending`);
  return { seq, id, action: action.action, payload: action.payload, lamport: action.lamport,
    participant: room.participant, serverTime: (TIME + BigInt(seq)).toString(),
    outcome: 'applied', ...extra };
}

function changes(room: OptimisticRoom): { count: number } {
  const counter = { count: 0 };
  room.onChange(() => counter.count++);
  return counter;
}

describe('OptimisticRoom', () => {
  test('a new action shows in the view at once, stamped after the highest clock seen', () => {
    const room = new OptimisticRoom(schema, 'ann');
    const seen = changes(room);
    room.observeClock(7);
    const action = room.addPending({ id: 'a1', action: 'titled', payload: { title: 'Tokyo' } });
    assert.equal(action.lamport, 8);
    assert.equal(room.addPending({ id: 'a2', action: 'joined', payload: {} }).lamport, 9);
    assert.equal(room.clock, 9);
    assert.deepEqual(room.view(), { title: 'Tokyo', members: ['ann'] });
    assert.deepEqual(room.confirmed.document(), {});
    assert.deepEqual(room.pending.map((pending) => pending.id), ['a1', 'a2']);
    assert.equal(seen.count, 2);
    assert.equal(room.view(), room.view(), 'the view is cached until something changes');
  });

  test('an action restored from the outbox keeps its lamport', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.observeClock(20);
    assert.equal(room.addPending({ id: 'a1', action: 'joined', payload: {}, lamport: 3 }).lamport,
      3);
    assert.equal(room.clock, 20);
  });

  test('an action the reducer refuses is not queued', () => {
    const room = new OptimisticRoom(schema, 'ann');
    const seen = changes(room);
    const refuses = (error: unknown): boolean =>
      error instanceof VellumError && error.code === 'invalid_argument';
    assert.throws(() => room.addPending({ id: 'a1', action: 'jumped', payload: {} }), refuses);
    assert.throws(() => room.addPending({ id: 'a2', action: 'walked', payload: { steps: 1.5 } }),
      refuses);
    assert.throws(() => room.addPending({ id: 'a3', action: 'titled', payload: {} }), refuses);
    assert.throws(() => room.addPending({ id: 'a4', action: 'titled',
      payload: { title: 1n } as unknown as JsonObject }), refuses);
    assert.deepEqual(room.pending, []);
    assert.deepEqual(room.view(), {});
    assert.equal(seen.count, 0);
  });

  test('the own echo confirms the action: it leaves pending, the view stays', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'walked', payload: { steps: 500 } });
    const before = room.view();
    const { results, conflicts } = room.applyConfirmed([echo(room, 'a1', 1)]);
    assert.deepEqual(results, [{ id: 'a1', action: 'walked', status: 'applied', seq: 1 }]);
    assert.deepEqual(conflicts, []);
    assert.deepEqual(room.pending, []);
    assert.deepEqual(room.view(), before);
    assert.deepEqual(room.confirmed.document(), { steps: { ann: 500 }, best: { ann: 500 } });
    assert.equal(room.confirmedSeq, 1);
  });

  test("another participant's event rebases the pending actions", () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'joined', payload: {} });
    room.addPending({ id: 'a2', action: 'walked', payload: { steps: 100 } });
    room.applyConfirmed([committed(1, 'bob', 'titled', { title: 'Kyoto' }, 1),
      committed(2, 'bob', 'joined', {}, 2), committed(3, 'ann', 'walked', { steps: 40 }, 0)]);
    assert.deepEqual(room.confirmed.document(), { title: 'Kyoto', members: ['bob'],
      steps: { ann: 40 }, best: { ann: 40 } });
    assert.deepEqual(room.view(), { title: 'Kyoto', members: ['ann', 'bob'],
      steps: { ann: 140 }, best: { ann: 100 } });
  });

  test('a superseded own write is rolled back with a conflict naming the winner', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'titled', payload: { title: 'Osaka' } });
    assert.equal(room.view().title, 'Osaka');
    // Bob saw more of the room: his write has the higher clock and wins wherever it commits.
    const { results: none } = room.applyConfirmed([
      committed(1, 'bob', 'titled', { title: 'Kyoto' }, 5)]);
    assert.deepEqual(none, []);
    assert.equal(room.view().title, 'Kyoto', 'the view already shows the winner');
    const { results, conflicts } = room.applyConfirmed([
      echo(room, 'a1', 2, { outcome: 'superseded', by: 'e1' })]);
    assert.deepEqual(results, [{ id: 'a1', action: 'titled', status: 'superseded', seq: 2,
      by: 'e1' }]);
    assert.equal(conflicts.length, 1);
    assert.deepEqual(conflicts[0], { action: { id: 'a1', action: 'titled',
      payload: { title: 'Osaka' }, lamport: 1, clientTime: conflicts[0]?.action.clientTime },
    reason: 'superseded', by: 'e1', winner: 'bob' });
    assert.equal(room.view().title, 'Kyoto');
    assert.deepEqual(room.pending, []);
  });

  test('seed 002: a stale step update is superseded and the status never flip-flops', () => {
    const vector = loadVector('live_session.json');
    const room = new OptimisticRoom(Schema.parse(vector.schema), 'dave');
    const statuses: string[] = [];
    room.onChange(() => {
      const dave = (room.view().participants as JsonObject | undefined)?.dave as JsonObject;
      if (dave !== undefined) statuses.push(`${String(dave.status)} ${String(dave.step)}`);
    });
    const toWire = (index: number): RoomEvent => {
      const entry = vector.events[index];
      assert.ok(entry);
      return { ...entry.event, ...(entry.expect as Partial<RoomEvent>) };
    };
    room.applyConfirmed([0, 1, 2, 3, 4].map(toWire));
    // Event 7 of the vector is dave's delayed "step 1 started" (lamport 3), still in his outbox.
    const stale = toWire(6);
    room.addPending({ id: stale.id, action: stale.action, payload: stale.payload as JsonObject,
      lamport: stale.lamport });
    const { results, conflicts } = room.applyConfirmed([5, 6, 7, 8].map(toWire));
    assert.deepEqual(results, [{ id: stale.id, action: 'step_started', status: 'superseded',
      seq: 7, by: '0194f3a0-0000-7000-8000-000000000005' }]);
    assert.equal(conflicts[0]?.winner, 'dave');
    assert.ok(statuses.length >= 3);
    assert.ok(statuses.slice(statuses.indexOf('in_progress 2')).every((s) => s === 'in_progress 2'),
      `statuses: ${statuses.join(', ')}`);
    assert.equal(room.confirmed.stateHash(), vector.expected.stateHash);
    assert.deepEqual(room.view(), vector.expected.document);
  });

  test('a rejected action is rolled back with a result and a conflict', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'joined', payload: {} });
    room.addPending({ id: 'a2', action: 'titled', payload: { title: 'Nara' } });
    const seen = changes(room);
    const error = { code: 'forbidden', message: 'read-only token' };
    const { result, conflict } = room.rejectPending('a1', error);
    assert.deepEqual(result, { id: 'a1', action: 'joined', status: 'rejected', error });
    assert.equal(conflict.reason, 'rejected');
    assert.equal(conflict.action.id, 'a1');
    assert.deepEqual(conflict.error, error);
    assert.deepEqual(room.view(), { title: 'Nara' });
    assert.deepEqual(room.pending.map((pending) => pending.id), ['a2']);
    assert.equal(seen.count, 1);
    assert.throws(() => room.rejectPending('a1', error),
      (thrown: unknown) => thrown instanceof VellumError && thrown.code === 'not_found');
  });

  test('an event delivered twice is applied once (a counter would double)', () => {
    const room = new OptimisticRoom(schema, 'ann');
    const first = committed(1, 'bob', 'walked', { steps: 300 }, 1);
    room.applyConfirmed([first]);
    room.applyConfirmed([first, committed(2, 'bob', 'walked', { steps: 20 }, 2)]);
    room.applyConfirmed([first]);
    assert.deepEqual(room.view(), { steps: { bob: 320 }, best: { bob: 300 } });
    assert.equal(room.confirmedSeq, 2);
  });

  test('an own echo at or below the confirmed seq does not settle the action twice', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.applyConfirmed([committed(5, 'bob', 'joined', {}, 1)]);
    room.addPending({ id: 'a1', action: 'walked', payload: { steps: 10 } });
    const { results } = room.applyConfirmed([echo(room, 'a1', 4)]);
    assert.deepEqual(results, []);
    assert.deepEqual(room.pending.map((pending) => pending.id), ['a1']);
    assert.deepEqual(room.view().steps, { ann: 10 });
  });

  test('system events and events the reducer refuses only advance the seq', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.applyConfirmed([committed(1, 'bob', 'joined', {}, 1)]);
    const view = room.view();
    const seen = changes(room);
    room.applyConfirmed([committed(2, 'carl', '$joined', {}, 0, { system: true })]);
    assert.equal(room.confirmedSeq, 2);
    assert.equal(room.view(), view);
    assert.equal(seen.count, 0);
    room.applyConfirmed([committed(3, 'carl', 'renamed', {}, 2)]);
    assert.equal(room.confirmedSeq, 3);
    assert.deepEqual(room.view(), { members: ['bob'] });
  });

  test('reset replaces the confirmed state and keeps the pending actions on top', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'walked', payload: { steps: 7 } });
    const server = RoomState.create(schema);
    server.apply({ seq: 10, id: 'e10', action: 'walked', payload: { steps: 1000 }, lamport: 9,
      participant: 'ann', serverTime: '1' });
    room.reset(10, 12, server.toJSON());
    assert.equal(room.confirmedSeq, 10);
    assert.equal(room.clock, 12);
    assert.deepEqual(room.view(), { steps: { ann: 1007 }, best: { ann: 1000 } });
    assert.deepEqual(room.pending.map((pending) => pending.id), ['a1']);
    // A schema without the pending action's action: left out of the view, still pending.
    const other = Schema.parse({ policies: { '/steps/*': 'counter', '/best/*': 'max' },
      actions: { ran: [{ op: 'increment', path: '/steps/{participant}' }] } });
    room.reset(10, 12, server.toJSON(), other);
    assert.equal(room.schema, other);
    assert.deepEqual(room.view(), { steps: { ann: 1000 }, best: { ann: 1000 } });
    assert.deepEqual(room.pending.map((pending) => pending.id), ['a1']);
    assert.throws(() => room.reset(11, 12, { version: 9 }));
    assert.equal(room.confirmedSeq, 10, 'a refused snapshot changes nothing');
  });

  test('set: a newer remove from another participant hides a pending add', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'joined', payload: {}, lamport: 1 });
    room.applyConfirmed([committed(1, 'ann', 'left', {}, 4, { id: 'e-elsewhere' })]);
    assert.deepEqual(room.view(), { members: [] });
  });

  test('list: a tombstone beats a pending insert of the same id', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'added', payload: { id: 'x' } });
    room.addPending({ id: 'a2', action: 'added', payload: { id: 'y' } });
    assert.deepEqual(room.view(), { activities: [{ id: 'x' }, { id: 'y' }] });
    room.applyConfirmed([committed(1, 'bob', 'removed', { id: 'x' }, 0)]);
    assert.deepEqual(room.view(), { activities: [{ id: 'y' }] });
  });

  test('counter and max: pending and confirmed combine, and an echo never counts twice', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'walked', payload: { steps: 5000 } });
    room.addPending({ id: 'a2', action: 'walked', payload: { steps: 300 } });
    room.applyConfirmed([committed(1, 'ann', 'walked', { steps: 7000 }, 1, { id: 'other-tab' })]);
    assert.deepEqual(room.view(), { steps: { ann: 12300 }, best: { ann: 7000 } });
    room.applyConfirmed([echo(room, 'a1', 2, { outcome: 'merged' })]);
    assert.deepEqual(room.view(), { steps: { ann: 12300 }, best: { ann: 7000 } });
    room.applyConfirmed([echo(room, 'a2', 3)]);
    assert.deepEqual(room.view(), { steps: { ann: 12300 }, best: { ann: 7000 } });
    assert.deepEqual(room.view(), room.confirmed.document());
  });

  test('removePending drops a coalesced action without a result', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'titled', payload: { title: 'T' } });
    room.addPending({ id: 'a2', action: 'titled', payload: { title: 'To' } });
    room.removePending('a1');
    assert.deepEqual(room.pending.map((pending) => pending.id), ['a2']);
    assert.deepEqual(room.view(), { title: 'To' });
  });

  test('settlePending: an answer for an event in the confirmed state removes the action', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'walked', payload: { steps: 5 } });
    const server = RoomState.create(schema);
    server.apply({ seq: 3, id: 'a1', action: 'walked', payload: { steps: 5 }, lamport: 1,
      participant: 'ann', serverTime: '1' });
    room.reset(3, 2, server.toJSON());
    assert.deepEqual(room.view().steps, { ann: 10 }, 'until answered, it counts twice');
    assert.deepEqual(room.settlePending('a1', { seq: 3, outcome: 'applied' }),
      { id: 'a1', action: 'walked', status: 'applied', seq: 3 });
    assert.deepEqual(room.view().steps, { ann: 5 });
    assert.equal(room.settlePending('a1', { seq: 3, outcome: 'applied' }), undefined);
  });

  test('settlePending before the echo: the action stays in the view, one result only', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'walked', payload: { steps: 5 } });
    const wire = echo(room, 'a1', 1);
    const result = room.settlePending('a1', { seq: 1, outcome: 'applied' });
    assert.deepEqual(result, { id: 'a1', action: 'walked', status: 'applied', seq: 1 });
    assert.deepEqual(room.pending, []);
    assert.deepEqual(room.view().steps, { ann: 5 }, 'no flicker while the event is on its way');
    const { results } = room.applyConfirmed([wire]);
    assert.deepEqual(results, []);
    assert.deepEqual(room.view().steps, { ann: 5 });
  });

  test('settlePending with superseded removes the action from the view at once', () => {
    const room = new OptimisticRoom(schema, 'ann');
    room.addPending({ id: 'a1', action: 'titled', payload: { title: 'Late' } });
    const result = room.settlePending('a1', { seq: 4, outcome: 'superseded', by: 'e3' });
    assert.deepEqual(result, { id: 'a1', action: 'titled', status: 'superseded', seq: 4,
      by: 'e3' });
    assert.deepEqual(room.view(), {});
  });

  test('an unsubscribed listener is not called', () => {
    const room = new OptimisticRoom(schema, 'ann');
    let calls = 0;
    const unsubscribe = room.onChange(() => calls++);
    room.addPending({ id: 'a1', action: 'joined', payload: {} });
    unsubscribe();
    room.addPending({ id: 'a2', action: 'titled', payload: { title: 'x' } });
    assert.equal(calls, 1);
  });
});
