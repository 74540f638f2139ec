// SPDX-License-Identifier: Apache-2.0
// The outbox: durable before visible, ordered across reopen, per (app, room,
// participant), removed only when asked, batches the server's size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Outbox, SUBMIT_EVENTS_MAX } from '../../src/outbox.js';
import { MemoryOutboxStorage } from '../../src/storage/memory.js';
import type { OutboxRecord, PendingAction } from '../../src/types.js';

const key = { app: 'trips', room: 'tokyo', participant: 'ann' };

function action(n: number): PendingAction {
  return { id: `id-${n}`, action: 'vote_cast', payload: { n }, lamport: n, clientTime: 1000 + n };
}

test('actions come back in the order they were added, also after reopening', async () => {
  const storage = new MemoryOutboxStorage();
  const outbox = await Outbox.open(storage, key);
  await outbox.add([action(3), action(1)]);
  await outbox.add([action(2)]);
  assert.deepEqual(outbox.actions.map((a) => a.id), ['id-3', 'id-1', 'id-2']);
  const reopened = await Outbox.open(storage, key);
  assert.deepEqual(reopened.actions.map((a) => a.id), ['id-3', 'id-1', 'id-2']);
  // New actions go after the old ones: the order numbers continue.
  await reopened.add([action(0)]);
  const again = await Outbox.open(storage, key);
  assert.deepEqual(again.actions.map((a) => a.id), ['id-3', 'id-1', 'id-2', 'id-0']);
});

test('an action is visible (sendable) only once the storage has it', async () => {
  let releasePut!: () => void;
  const gate = new Promise<void>((resolve) => (releasePut = resolve));
  const storage = new MemoryOutboxStorage();
  const put = storage.put.bind(storage);
  storage.put = async (records: OutboxRecord[]) => {
    await gate;
    return put(records);
  };
  const outbox = await Outbox.open(storage, key);
  const added = outbox.add([action(1)]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(outbox.size, 0);
  assert.equal((await storage.load()).length, 0);
  releasePut();
  await added;
  assert.deepEqual(outbox.actions.map((a) => a.id), ['id-1']);
});

test('removed actions are gone at once and from the storage', async () => {
  const storage = new MemoryOutboxStorage();
  const outbox = await Outbox.open(storage, key);
  await outbox.add([action(1), action(2), action(3)]);
  const removing = outbox.remove(['id-2', 'id-unknown']);
  assert.deepEqual(outbox.actions.map((a) => a.id), ['id-1', 'id-3']);
  assert.equal(outbox.has('id-2'), false);
  await removing;
  const reopened = await Outbox.open(storage, key);
  assert.deepEqual(reopened.actions.map((a) => a.id), ['id-1', 'id-3']);
});

test('an action removed while its add is being written does not come back', async () => {
  const storage = new MemoryOutboxStorage();
  const outbox = await Outbox.open(storage, key);
  const added = outbox.add([action(1), action(2)]);
  const removed = outbox.remove(['id-1']);
  await Promise.all([added, removed]);
  assert.deepEqual(outbox.actions.map((a) => a.id), ['id-2']);
  assert.deepEqual((await storage.load()).map((r) => r.action.id), ['id-2']);
});

test('each (app, room, participant) has its own outbox in a shared storage', async () => {
  const storage = new MemoryOutboxStorage();
  const ann = await Outbox.open(storage, key);
  const bob = await Outbox.open(storage, { ...key, participant: 'bob' });
  const osaka = await Outbox.open(storage, { ...key, room: 'osaka' });
  await ann.add([action(1)]);
  await bob.add([action(2)]);
  await osaka.add([action(3)]);
  assert.deepEqual((await Outbox.open(storage, key)).actions.map((a) => a.id), ['id-1']);
  const bobAgain = await Outbox.open(storage, { ...key, participant: 'bob' });
  assert.deepEqual(bobAgain.actions.map((a) => a.id), ['id-2']);
});

test('batches hold at most the server limit of events, in order', async () => {
  const outbox = await Outbox.open(new MemoryOutboxStorage(), key);
  await outbox.add(Array.from({ length: 250 }, (_, i) => action(i)));
  const batches = outbox.batches();
  assert.deepEqual(batches.map((b) => b.length), [SUBMIT_EVENTS_MAX, SUBMIT_EVENTS_MAX, 50]);
  assert.deepEqual(batches.flat().map((a) => a.id), outbox.actions.map((a) => a.id));
  assert.equal(batches[1]![0]!.id, 'id-100');
});

test('whenEmpty resolves when the last action is removed', async () => {
  const outbox = await Outbox.open(new MemoryOutboxStorage(), key);
  await outbox.whenEmpty();  // empty now: resolves at once
  await outbox.add([action(1), action(2)]);
  let empty = false;
  const waiting = outbox.whenEmpty().then(() => (empty = true));
  await outbox.remove(['id-1']);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(empty, false);
  await outbox.remove(['id-2']);
  await waiting;
  assert.equal(empty, true);
});

test('a failed storage write fails the add and leaves nothing half-visible', async () => {
  const storage = new MemoryOutboxStorage();
  storage.put = async () => {
    throw new Error('disk full');
  };
  const outbox = await Outbox.open(storage, key);
  await assert.rejects(outbox.add([action(1)]), /disk full/);
  assert.equal(outbox.size, 0);
  // The queue of writes goes on after a failure.
  await outbox.remove(['id-1']);
});
