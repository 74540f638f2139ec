// SPDX-License-Identifier: Apache-2.0
// The TypeScript reducer against the shared vectors (spec/rooms/vectors/), exactly as the C++
// test src/rooms/vectors_test.cc runs them: outcomes and errors in commit order, the document,
// its canonical form, the snapshot and the state hash; then the events that succeeded in reverse
// order, and from a snapshot taken half way, must reach the same hash.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { type ReducerEvent, RoomState, Schema, canonicalJson, sha256Hex } from
  '../../src/reducer/index.js';
import { type Json, VellumError } from '../../src/types.js';
import { loadVectors } from './support/vectors.js';

function resultOf(state: RoomState, event: ReducerEvent): Json {
  try {
    return state.apply(event);
  } catch (error) {
    if (error instanceof VellumError) return { error: error.code };
    throw error;
  }
}

describe('shared vectors', () => {
  const vectors = loadVectors();

  test('every vector file is found (one per policy, three apps, errors)', () => {
    assert.ok(vectors.length >= 9, `${vectors.length} vector files`);
  });

  for (const vector of vectors) {
    test(vector.file, () => {
      const schema = Schema.parse(vector.schema);
      const state = RoomState.create(schema);
      const committed: ReducerEvent[] = [];
      for (const { event, expect } of vector.events) {
        const result = resultOf(state, event);
        assert.deepEqual(result, expect, `event ${event.id}`);
        if (!Object.hasOwn(expect, 'error')) committed.push(event);
      }
      const expected = vector.expected;
      assert.deepEqual(state.document(), expected.document);
      assert.equal(state.canonicalDocument(), expected.canonicalDocument);
      assert.deepEqual(state.toJSON(), expected.state);
      assert.equal(state.stateHash(), expected.stateHash);
      assert.equal(sha256Hex(canonicalJson(state.toJSON())), expected.stateHash);

      // The state is a function of the event set: the reverse order, and a snapshot half way.
      const reversed = RoomState.create(schema);
      for (const event of [...committed].reverse()) reversed.apply(event);
      assert.equal(reversed.stateHash(), expected.stateHash);
      const half = Math.floor(committed.length / 2);
      const firstHalf = RoomState.create(schema);
      for (const event of committed.slice(0, half)) firstHalf.apply(event);
      const snapshot = JSON.parse(JSON.stringify(firstHalf.toJSON())) as Json;
      const restored = RoomState.fromJSON(schema, snapshot);
      assert.equal(restored.stateHash(), firstHalf.stateHash());
      for (const event of committed.slice(half)) restored.apply(event);
      assert.equal(restored.stateHash(), expected.stateHash);
      assert.deepEqual(restored.toJSON(), expected.state);
    });
  }
});
