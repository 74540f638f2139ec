// SPDX-License-Identifier: Apache-2.0
// The reducer's determinism property (docs/api/rooms.md, "Determinism"): for each policy, random
// event sets with colliding clocks, server times and participants (non-ASCII ones whose UTF-16
// and UTF-8 orders differ), duplicate item ids, deletes and counter sums past 2^53 reach one
// state hash in every interleaving, also when cut at a random point and finished from a
// snapshot or from a clone (which must leave the original untouched).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { type ReducerEvent, RoomState, Schema, canonicalJson } from '../../src/reducer/index.js';
import type { Json, JsonObject } from '../../src/types.js';
import { Prng } from './support/prng.js';

const EVENT_SETS = 125;
const ORDERS_PER_SET = 16;  // 2,000 interleavings per policy
const SAFE = Number.MAX_SAFE_INTEGER;
// U+E000 sorts after U+1F600 by UTF-16 units, before it by UTF-8 bytes.
const PARTICIPANTS = ['ann', 'bob', '\ue000', '\u{1f600}', 'é'];
const BASE_TIME = 1767225600000000000n;

interface PolicyCase {
  name: string;
  schema: Json;
  action(prng: Prng): { action: string; payload: JsonObject };
}

const cases: PolicyCase[] = [
  {
    name: 'lww',
    schema: { policies: { '/reg': 'lww', '/by/*': 'lww' }, actions: {
      put: [{ op: 'set', path: '/reg', value: '$payload.v' }],
      clear: [{ op: 'delete', path: '/reg' }],
      mine: [{ op: 'set', path: '/by/{payload.k}',
        value: { v: '$payload.v', who: '$participant' } }],
    } },
    action: (prng) => ({ action: prng.pick(['put', 'put', 'clear', 'mine']),
      payload: { v: prng.pick([1, 'x', null, [true], { a: 2 }]), k: prng.pick(['a', 'b', 7]) } }),
  },
  {
    name: 'set',
    schema: { policies: { '/s': 'set', '/tags/*': 'set' }, actions: {
      add: [{ op: 'add', path: '/s', value: '$payload.e' }],
      remove: [{ op: 'remove', path: '/s', value: '$payload.e' }],
      tag: [{ op: 'add', path: '/tags/{payload.k}', value: '$participant' }],
    } },
    action: (prng) => ({ action: prng.pick(['add', 'add', 'remove', 'tag']),
      payload: { e: prng.pick([true, false, 0, -3, 1, '1', 'a', '\ue000', '\u{1f600}']),
        k: prng.pick(['x', 'y']) } }),
  },
  {
    name: 'list',
    schema: { policies: { '/l': 'list' }, actions: {
      insert: [{ op: 'insert', path: '/l', value: { id: '$payload.id', n: '$payload.n',
        by: '$participant' } }],
      delete: [{ op: 'delete', path: '/l', value: '$payload.id' }],
    } },
    action: (prng) => ({ action: prng.pick(['insert', 'insert', 'insert', 'delete']),
      payload: { id: prng.pick(['i1', 'i2', 'i3', '\ue000', '\u{1f600}']), n: prng.below(100) } }),
  },
  {
    name: 'max',
    schema: { policies: { '/m': 'max', '/best/*': 'max' }, actions: {
      run: [{ op: 'max', path: '/m', value: '$payload.v' },
        { op: 'max', path: '/best/{participant}', value: '$payload.v' }],
    } },
    action: (prng) => ({ action: 'run', payload: { v: prng.pick([-SAFE, -1, 0, 5, 5, 9, SAFE]) } }),
  },
  {
    name: 'counter',
    schema: { policies: { '/c': 'counter', '/by/*': 'counter' }, actions: {
      add: [{ op: 'increment', path: '/c', value: '$payload.n' },
        { op: 'increment', path: '/by/{participant}' }],
    } },
    action: (prng) => ({ action: 'add', payload: { n: prng.pick([1, -1, 7, SAFE, SAFE, -SAFE]) } }),
  },
];

function randomEvents(prng: Prng, policy: PolicyCase, count: number): ReducerEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    ...policy.action(prng),
    seq: index + 1,
    id: `${prng.pick(['e', '\u{1f600}', '\ue000'])}-${index}`,
    lamport: prng.below(5),
    participant: prng.pick(PARTICIPANTS),
    serverTime: (BASE_TIME + BigInt(prng.below(3))).toString(),
  }));
}

function replayed(schema: Schema, events: readonly ReducerEvent[]): RoomState {
  const state = RoomState.create(schema);
  for (const event of events) state.apply(event);
  return state;
}

// Applies `order` up to a random cut, then finishes from a JSON snapshot and on clones. Whichever
// of a state and its clone changes first, the other must not move (they share until written),
// and a document handed out never changes.
function hashesThroughCut(prng: Prng, schema: Schema, order: readonly ReducerEvent[]): string[] {
  const cut = prng.below(order.length + 1);
  const state = replayed(schema, order.slice(0, cut));
  const clone = state.clone();  // before anything is read from `state`
  const atCut = canonicalJson(replayed(schema, order.slice(0, cut)).toJSON());
  const restored = RoomState.fromJSON(schema, JSON.parse(atCut) as Json);
  for (const event of order.slice(cut)) state.apply(event);
  assert.equal(canonicalJson(clone.toJSON()), atCut, 'changing a state changed its clone');
  const documentAtCut = clone.document();
  const documentTextAtCut = canonicalJson(documentAtCut);
  const cloneOfClone = clone.clone();
  for (const event of order.slice(cut)) {
    restored.apply(event);
    clone.apply(event);
  }
  assert.equal(canonicalJson(cloneOfClone.toJSON()), atCut, 'changing a clone changed its source');
  assert.equal(canonicalJson(documentAtCut), documentTextAtCut, 'a document handed out changed');
  return [restored.stateHash(), clone.stateHash(), state.stateHash()];
}

for (const policy of cases) {
  test(`${policy.name}: every interleaving of an event set reaches one state hash`, () => {
    const seed = 0x5eed + policy.name.length;
    const prng = new Prng(seed);
    const schema = Schema.parse(policy.schema);
    const distinct = new Set<string>();
    for (let set = 0; set < EVENT_SETS; set++) {
      const events = randomEvents(prng, policy, 4 + prng.below(10));
      const expected = replayed(schema, events).stateHash();
      distinct.add(expected);
      for (let order = 0; order < ORDERS_PER_SET; order++) {
        const shuffled = prng.shuffled(events);
        const hashes = order % 4 === 0 ? hashesThroughCut(prng, schema, shuffled) :
          [replayed(schema, shuffled).stateHash()];
        for (const hash of hashes) {
          assert.equal(hash, expected, `seed ${seed}, event set ${set}, order ${order}`);
        }
      }
    }
    // The property means nothing if the hash ignored the events.
    assert.ok(distinct.size > EVENT_SETS / 2, `${distinct.size} distinct states`);
  });
}
