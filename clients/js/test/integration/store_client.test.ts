// SPDX-License-Identifier: Apache-2.0
// EventStoreClient against a real `vellum serve`: append with expected
// revisions, reads, and a subscription that resumes across a server restart
// without a gap or a duplicate.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EventStoreClient, type StoredEvent } from '../../src/store_client.js';
import { VellumError } from '../../src/types.js';
import { removeDataDir, startServer, type RunningServer } from '../support/server.js';
import { restart, until } from './helpers.js';

let server: RunningServer;
let store: EventStoreClient;
before(async () => {
  server = await startServer();
  store = new EventStoreClient({ url: server.url });
});
after(async () => {
  await server.stop();
  removeDataDir(server);
});

test('append checks the expected revision and is idempotent by event id', async () => {
  const first = await store.append('order-1', [{ type: 'OrderPlaced', data: { total: 42 } }],
    { expectedRevision: 'no_stream' });
  assert.equal(first.firstRevision, 0);
  await assert.rejects(
    store.append('order-1', [{ type: 'OrderPlaced' }], { expectedRevision: 'no_stream' }),
    (error: VellumError) => {
      assert.equal(error.code, 'wrong_expected_revision');
      assert.equal(error.status, 409);
      assert.match(error.message, /actual=0/);
      return true;
    });
  const id = '0194f3a0-0000-7000-8000-00000000abcd';
  const second = await store.append('order-1', [{ type: 'OrderPaid', id, data: { n: 1 } }],
    { expectedRevision: 0 });
  assert.equal(second.lastRevision, 1);
  const replay = await store.append('order-1', [{ type: 'OrderPaid', id, data: { n: 1 } }],
    { expectedRevision: 0 });
  assert.equal(replay.idempotentReplay, true);
  assert.equal(replay.lastRevision, 1);
});

test('reads: a stream both ways, the log by category, one event by id', async () => {
  await store.append('cart-7', [1, 2, 3].map((n) => ({ type: 'ItemAdded', data: { n } })));
  const forward = await store.readStream('cart-7', { limit: 2 });
  assert.deepEqual(forward.events.map((e) => e.data), [{ n: 1 }, { n: 2 }]);
  assert.equal(forward.next, 2);
  const backward = await store.readStream('cart-7', { direction: 'backward', limit: 1 });
  assert.deepEqual(backward.events.map((e) => e.streamrevision), [2]);
  const all = await store.readAll({ category: 'cart', type: ['ItemAdded'] });
  assert.equal(all.events.length, 3);
  const one = await store.readEvent(forward.events[1]!.id);
  assert.deepEqual(one.data, { n: 2 });
  await assert.rejects(store.readStream('nothing-here'), { code: 'stream_not_found' });
});

test('a subscription resumes after a server restart: every event once, in order', async () => {
  const seen: StoredEvent[] = [];
  let lives = 0;
  const errors: string[] = [];
  await store.append('chat-1', [{ type: 'Said', data: { n: 0 } }]);
  const subscription = store.subscribe({
    stream: 'chat-1', from: 0, onEvent: (e) => seen.push(e), onLive: () => lives++,
    onError: (e) => errors.push(e.code), reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  });
  try {
    await store.append('chat-1', [1, 2].map((n) => ({ type: 'Said', data: { n } })));
    await until(() => seen.length === 3 && lives === 1, 'the first three events');
    await server.kill();
    server = await restart(server);
    store = new EventStoreClient({ url: server.url });
    await store.append('chat-1', [3, 4, 5].map((n) => ({ type: 'Said', data: { n } })));
    await until(() => seen.length >= 6 && lives >= 2, 'the events after the restart');
    await new Promise((resolve) => setTimeout(resolve, 200));  // no late duplicates either
    assert.deepEqual(seen.map((e) => e.streamrevision), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(seen.map((e) => (e.data as { n: number }).n), [0, 1, 2, 3, 4, 5]);
    assert.ok(errors.length >= 1, 'the drop was reported');
  } finally {
    subscription.close();
  }
});

test('a live-only subscription gets only what is appended after it started', async () => {
  await store.append('feed-1', [{ type: 'Old' }]);
  const seen: string[] = [];
  let live = false;
  const subscription = store.subscribe({
    category: 'feed', onEvent: (e) => seen.push(e.type), onLive: () => (live = true),
  });
  try {
    await until(() => live, 'caught up');
    await store.append('feed-2', [{ type: 'New1' }, { type: 'New2' }]);
    await until(() => seen.length === 2, 'the new events');
    assert.deepEqual(seen, ['New1', 'New2']);
  } finally {
    subscription.close();
  }
});
