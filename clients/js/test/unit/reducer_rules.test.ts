// SPDX-License-Identifier: Apache-2.0
// The reducer's edges that the shared vectors do not reach: every schema mistake the C++ refuses,
// per-event errors that must leave the state unchanged, damaged snapshots, and the places where
// JavaScript differs from C++ by default (UTF-16 order and lengths, BigInt times and sums,
// members named like Object.prototype's).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { type ReducerEvent, RoomState, Schema, canonicalJson, sha256Hex } from
  '../../src/reducer/index.js';
import { type Json, type JsonObject, VellumError } from '../../src/types.js';

const SAFE = Number.MAX_SAFE_INTEGER;
const EMOJI = '\u{1f600}';   // UTF-16 units D83D DE00, UTF-8 F0 9F 98 80
const PRIVATE = '\ue000';    // UTF-16 unit E000 (above D83D), UTF-8 EE 80 80 (below F0)

function isCode(code: string, fragment?: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof VellumError, `not a VellumError: ${String(error)}`);
    assert.equal(error.code, code);
    if (fragment !== undefined) assert.ok(error.message.includes(fragment), error.message);
    return true;
  };
}

function withOps(policies: JsonObject, ops: Json): Json {
  return { policies, actions: { a: ops } };
}

const lists = { '/t': 'lww', '/s': 'set', '/l': 'list', '/m': 'max', '/c': 'counter' };
// A value whose innermost scalar is `levels` deep (the root is depth 0; 64 is the limit).
const deep = (levels: number): Json => (levels === 0 ? 1 : [deep(levels - 1)]);

const schemaErrors: [string, Json, string][] = [
  ['not an object', [], 'must be a JSON object'],
  ['an unknown member', { policies: {}, actions: {}, extra: 1 }, "unknown key 'extra'"],
  ['no policies', { actions: {} }, '"policies" is missing'],
  ['no actions', { policies: {} }, '"actions" must be an object'],
  ['policies not an object', { policies: [], actions: {} }, '"policies" must be an object'],
  ['a pointer without /', { policies: { title: 'lww' }, actions: {} }, "starts with '/'"],
  ['an empty segment', { policies: { '/a//b': 'lww' }, actions: {} }, 'empty segment'],
  ['a bad escape', { policies: { '/a~2': 'lww' }, actions: {} }, "'~' must be followed"],
  ['an unknown policy', { policies: { '/a': 'lwww' }, actions: {} }, "unknown policy 'lwww'"],
  ['a policy not a string', { policies: { '/a': 1 }, actions: {} }, 'must be a string'],
  ['a placeholder in a policy path', { policies: { '/a/{participant}': 'lww' }, actions: {} },
    "use '*' here"],
  ['overlapping policy paths', { policies: { '/a/*': 'lww', '/a/b': 'counter' }, actions: {} },
    'overlap'],
  ['nested policy paths', { policies: { '/a': 'lww', '/a/b': 'counter' }, actions: {} },
    'may not nest'],
  ['17 segments', { policies: { ['/x'.repeat(17)]: 'lww' }, actions: {} }, 'more than 16'],
  // 129 two-byte characters: 258 bytes in 129 UTF-16 units.
  ['a segment over 256 bytes', { policies: { ['/' + 'é'.repeat(129)]: 'lww' }, actions: {} },
    'over 256 bytes'],
  ['257 policies', { policies: Object.fromEntries(Array.from({ length: 257 },
    (_, i) => [`/p${i}`, 'lww'])), actions: {} }, 'more than 256 policies'],
  ['an op that does not fit', withOps(lists, [{ op: 'increment', path: '/t' }]), 'does not fit'],
  ['insert on a set', withOps(lists, [{ op: 'insert', path: '/s', value: { id: 'x' } }]),
    'does not fit'],
  ['an unknown op', withOps(lists, [{ op: 'push', path: '/l' }]), "unknown op 'push'"],
  ['a path without policy', withOps(lists, [{ op: 'set', path: '/x', value: 1 }]),
    'matches no policy'],
  ['* in an op path', withOps({ '/c/*': 'counter' }, [{ op: 'increment', path: '/c/*' }]),
    "'*' belongs in policy"],
  ['an unknown placeholder', withOps({ '/c/*': 'counter' },
    [{ op: 'increment', path: '/c/{who}' }]), 'bad placeholder'],
  ['a partial placeholder', withOps({ '/c/*': 'counter' },
    [{ op: 'increment', path: '/c/x{participant}' }]), 'whole segment'],
  ['an empty payload field', withOps({ '/c/*': 'counter' },
    [{ op: 'increment', path: '/c/{payload.}' }]), 'bad placeholder'],
  ['a placeholder for a literal', withOps({ '/c/ann': 'counter' },
    [{ op: 'increment', path: '/c/{participant}' }]), 'matches no policy'],
  ['set without value', withOps(lists, [{ op: 'set', path: '/t' }]), 'set needs a "value"'],
  ['lww delete with value', withOps(lists, [{ op: 'delete', path: '/t', value: 1 }]),
    'takes no value'],
  ['list delete without value', withOps(lists, [{ op: 'delete', path: '/l' }]),
    'delete needs a "value"'],
  ['a fraction', withOps(lists, [{ op: 'increment', path: '/c', value: 1.5 }]), 'integers'],
  ['a string increment', withOps(lists, [{ op: 'increment', path: '/c', value: 'x' }]),
    'takes an integer'],
  ['2^53', withOps(lists, [{ op: 'max', path: '/m', value: 2 ** 53 }]), '2^53'],
  ['an object set element', withOps(lists, [{ op: 'add', path: '/s', value: { a: 1 } }]),
    'set elements'],
  ['an insert without id', withOps(lists, [{ op: 'insert', path: '/l', value: { n: 1 } }]),
    '"id"'],
  ['a 257-byte item id', withOps(lists, [{ op: 'delete', path: '/l', value: 'é'.repeat(128) +
    'x' }]), 'list item ids'],
  ['a value nested 65 deep', withOps(lists, [{ op: 'set', path: '/t', value: deep(65) }]),
    'nested too deeply'],
  ['$payload..x', withOps(lists, [{ op: 'set', path: '/t', value: '$payload..x' }]),
    'unknown reference'],
  ['$user inside a value', withOps(lists, [{ op: 'set', path: '/t', value: { by: '$user' } }]),
    "unknown reference '$user'"],
  ['an op member', withOps(lists, [{ op: 'set', path: '/t', value: 1, when: 2 }]),
    "unknown key 'when'"],
  ['an op without op', withOps(lists, [{ path: '/t', value: 1 }]), '"op" must be a string'],
  ['an op without path', withOps(lists, [{ op: 'set', value: 1 }]), '"path" must be a string'],
  ['ops not a list', withOps(lists, { op: 'set' }), 'must be an array of ops'],
  ['33 ops', withOps(lists, Array.from({ length: 33 }, () => ({ op: 'increment', path: '/c' }))),
    'more than 32 ops'],
  ['a reserved action', { policies: {}, actions: { $join: [] } }, 'reserved'],
  ['a 130-byte action name', { policies: {}, actions: { ['é'.repeat(65)]: [] } },
    'action names have 1 to 128 bytes'],
];

describe('Schema.parse', () => {
  for (const [what, schema, fragment] of schemaErrors) {
    test(`refuses ${what}`, () => {
      assert.throws(() => Schema.parse(schema), isCode('invalid_argument', fragment));
    });
  }

  test('accepts what the spec allows and keeps the document', () => {
    const json = { policies: { '/a/*/x': 'lww', '/a/*/y': 'set', '/n': 'counter' }, actions: {
      note: [{ op: 'set', path: '/a/{participant}/x', value: { text: '$$literal' } }],
      bump: [{ op: 'increment', path: '/n' }],
      chat: [],
    } };
    const schema = Schema.parse(json);
    assert.deepEqual(schema.json, json);
    assert.ok(schema.hasAction('chat') && schema.hasAction('bump'));
    assert.ok(!schema.hasAction('constructor'), 'an inherited name is no action');
    const state = RoomState.create(schema);
    state.apply(event({ action: 'note' }));
    state.apply(event({ id: 'e2', action: 'bump' }));
    assert.deepEqual(state.document(), { a: { ann: { x: { text: '$literal' } } }, n: 1 });
  });
});

let nextId = 0;
function event(fields: Partial<ReducerEvent>): ReducerEvent {
  nextId++;
  return { seq: nextId, id: `id-${nextId}`, action: 'a', payload: {}, lamport: 1,
    participant: 'ann', serverTime: '1767225600000000000', ...fields };
}

describe('RoomState.apply errors', () => {
  const schema = Schema.parse({ policies: { '/scores/*': 'counter', '/l': 'list', '/t': 'lww' },
    actions: {
      score: [{ op: 'increment', path: '/scores/{payload.team}', value: '$payload.points' }],
      add: [{ op: 'insert', path: '/l', value: '$payload.item' }],
      remove: [{ op: 'delete', path: '/l', value: '$payload.id' }],
      put: [{ op: 'set', path: '/t', value: '$payload' }],
      inherited: [{ op: 'set', path: '/t', value: '$payload.constructor' }],
    } });
  const good = { team: 'red', points: 1 };
  const failures: [string, Partial<ReducerEvent>][] = [
    ['an unknown action', { action: 'jump', payload: good }],
    ['an inherited action name', { action: 'toString', payload: good }],
    ['an empty id', { id: '', action: 'score', payload: good }],
    ['a 130-byte id', { id: 'é'.repeat(65), action: 'score', payload: good }],
    ['a 257-byte participant', { participant: 'x'.repeat(255) + 'é', action: 'score',
      payload: good }],
    ['a lone surrogate participant', { participant: 'a\ud800', action: 'score', payload: good }],
    ['lamport 2^53', { lamport: 2 ** 53, action: 'score', payload: good }],
    ['a fractional lamport', { lamport: 1.5, action: 'score', payload: good }],
    ['a negative seq', { seq: -1, action: 'score', payload: good }],
    ['a server time that is no number', { serverTime: '17e8', action: 'score', payload: good }],
    ['an empty server time', { serverTime: '', action: 'score', payload: good }],
    ['a server time beyond 64 bits', { serverTime: '9223372036854775808', action: 'score',
      payload: good }],
    ['a missing payload field', { action: 'score', payload: { team: 'red' } }],
    // Every object inherits `constructor`: it is not a payload field.
    ['an inherited payload field', { action: 'inherited', payload: {} }],
    ['a fraction', { action: 'score', payload: { team: 'red', points: 2.5 } }],
    ['2^53', { action: 'score', payload: { team: 'red', points: 2 ** 53 } }],
    ['an object placeholder', { action: 'score', payload: { team: ['red'], points: 1 } }],
    ['an empty placeholder', { action: 'score', payload: { team: '', points: 1 } }],
    ['a 257-byte placeholder', { action: 'score', payload: { team: 'é'.repeat(128) + 'x',
      points: 1 } }],
    ['an item without id', { action: 'add', payload: { item: { name: 'x' } } }],
    ['an empty id to delete', { action: 'remove', payload: { id: '' } }],
    ['a value nested 65 deep', { action: 'put', payload: deep(65) }],
    ['a lone surrogate in a value', { action: 'put', payload: { text: '\udc00' } }],
    ['a payload that is no object', { action: 'score', payload: 'red' }],
  ];

  for (const [what, fields] of failures) {
    test(`refuses ${what} and changes nothing`, () => {
      const state = RoomState.create(schema);
      const first = event({ action: 'score', payload: good });
      state.apply(first);
      const before = canonicalJson(state.toJSON());
      assert.throws(() => state.apply(event(fields)), isCode('invalid_argument'));
      assert.equal(canonicalJson(state.toJSON()), before);
      assert.equal(state.seqMax, first.seq);
    });
  }

  test('a value just inside the limits is accepted', () => {
    const state = RoomState.create(schema);
    state.apply(event({ action: 'put', payload: deep(64) }));
    state.apply(event({ action: 'score', id: 'é'.repeat(64), participant: 'é'.repeat(128),
      payload: { team: 'é'.repeat(128), points: SAFE }, serverTime: -5n }));
    assert.equal((state.document().scores as JsonObject)['é'.repeat(128)], SAFE);
  });

  test('integer placeholders are written in decimal', () => {
    const state = RoomState.create(schema);
    state.apply(event({ action: 'score', payload: { team: -3, points: 2 } }));
    state.apply(event({ action: 'score', payload: { team: 2 ** 60, points: 1 } }));
    assert.deepEqual(state.document(), { scores: { '-3': 2, '1152921504606846976': 1 } });
  });
});

describe('strings compare by UTF-8 bytes', () => {
  test('canonicalJson sorts keys by UTF-8 bytes, not UTF-16 units', () => {
    const text = canonicalJson({ [EMOJI]: 2, [PRIVATE]: 1, a: 0, B: 3 });
    assert.equal(text, `{"B":3,"a":0,"${PRIVATE}":1,"${EMOJI}":2}`);
  });

  test('canonicalJson escapes as JSON.stringify and refuses what C++ cannot write', () => {
    assert.equal(canonicalJson(['\u0001\n"\\/\u007f', -0, null, true]),
      '["\\u0001\\n\\"\\\\/\u007f",0,null,true]');
    assert.throws(() => canonicalJson({ a: 1.5 }), isCode('invalid_argument'));
    assert.throws(() => canonicalJson([2 ** 53]), isCode('invalid_argument'));
    assert.throws(() => canonicalJson({ ['\ud800']: 1 }), isCode('invalid_argument'));
  });

  test('sha256Hex hashes UTF-8 bytes', () => {
    assert.equal(sha256Hex('abc'),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(sha256Hex('é'), sha256Hex('\u00e9'));
    assert.notEqual(sha256Hex('é'), sha256Hex('e\u0301'));
  });

  test('an lww tie on lamport and server time goes to the greater participant in UTF-8', () => {
    const schema = Schema.parse({ policies: { '/t': 'lww' },
      actions: { put: [{ op: 'set', path: '/t', value: '$participant' }] } });
    const byPrivate = event({ action: 'put', participant: PRIVATE, id: 'x1' });
    const byEmoji = event({ action: 'put', participant: EMOJI, id: 'x2' });
    for (const order of [[byPrivate, byEmoji], [byEmoji, byPrivate]]) {
      const state = RoomState.create(schema);
      const outcomes = order.map((each) => state.apply(each));
      assert.equal(state.document().t, EMOJI);
      const privateOutcome = outcomes[order.indexOf(byPrivate)];
      if (order[1] === byPrivate) {
        assert.deepEqual(privateOutcome, { outcome: 'superseded', by: 'x2' });
      }
    }
  });

  test('set strings are ordered by UTF-8 bytes after booleans and integers', () => {
    const schema = Schema.parse({ policies: { '/s': 'set' },
      actions: { add: [{ op: 'add', path: '/s', value: '$payload.e' }] } });
    const state = RoomState.create(schema);
    for (const element of [EMOJI, 'b', 10, PRIVATE, -2, true, '10', false]) {
      state.apply(event({ action: 'add', payload: { e: element } }));
    }
    assert.deepEqual(state.document().s, [false, true, -2, 10, '10', 'b', PRIVATE, EMOJI]);
  });
});

describe('members named like Object.prototype properties', () => {
  const schema = Schema.parse({ policies: { '/m/*': 'lww', '/c/*': 'counter' }, actions: {
    put: [{ op: 'set', path: '/m/{payload.k}', value: '$payload.v' }],
    bump: [{ op: 'increment', path: '/c/{payload.k}' }],
  } });

  test('__proto__ and constructor are plain members of the document', () => {
    const state = RoomState.create(schema);
    const payload = JSON.parse('{"k": "__proto__", "v": {"polluted": true}}') as JsonObject;
    state.apply(event({ action: 'put', payload }));
    state.apply(event({ action: 'bump', payload: { k: 'constructor' } }));
    state.apply(event({ action: 'bump', payload: { k: 'constructor' } }));
    const document = state.document();
    assert.equal(Object.getPrototypeOf(document.m), Object.prototype);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
    assert.equal(canonicalJson(document),
      '{"c":{"constructor":2},"m":{"__proto__":{"polluted":true}}}');
    const restored = RoomState.fromJSON(schema, JSON.parse(JSON.stringify(state.toJSON())) as Json);
    assert.equal(restored.stateHash(), state.stateHash());
  });
});

describe('counters', () => {
  test('the sum is exact, the document clamped to ±(2^53 - 1)', () => {
    const schema = Schema.parse({ policies: { '/c': 'counter' },
      actions: { add: [{ op: 'increment', path: '/c', value: '$payload.n' }] } });
    const state = RoomState.create(schema);
    state.apply(event({ action: 'add', payload: { n: SAFE } }));
    state.apply(event({ action: 'add', payload: { n: SAFE } }));
    assert.equal(state.document().c, SAFE);
    assert.deepEqual((state.toJSON().slots as JsonObject)['/c'],
      { policy: 'counter', lamportMax: 1, sum: '18014398509481982' });
    state.apply(event({ action: 'add', payload: { n: -SAFE } }));
    state.apply(event({ action: 'add', payload: { n: -1 } }));
    assert.equal(state.document().c, SAFE - 1);
  });
});

describe('documents are immutable', () => {
  test('a document handed out is frozen and keeps its content after later events', () => {
    const schema = Schema.parse({ policies: { '/m/*': 'lww' },
      actions: { put: [{ op: 'set', path: '/m/{payload.k}', value: '$payload.v' }] } });
    const state = RoomState.create(schema);
    const payload: JsonObject = { k: 'a', v: { n: 1 } };
    state.apply(event({ action: 'put', payload }));
    const document = state.document();
    (payload.v as JsonObject).n = 2;  // the caller's payload is copied, not kept
    state.apply(event({ action: 'put', payload: { k: 'b', v: 3 }, lamport: 2 }));
    assert.deepEqual(document, { m: { a: { n: 1 } } });
    assert.throws(() => { (document.m as JsonObject).x = 1; }, TypeError);
    assert.deepEqual(state.document(), { m: { a: { n: 1 }, b: 3 } });
  });
});

describe('RoomState.fromJSON', () => {
  const schema = Schema.parse({ policies: { '/t': 'lww', '/s': 'set', '/l': 'list',
    '/c': 'counter' }, actions: {
    put: [{ op: 'set', path: '/t', value: 1 }],
    add: [{ op: 'add', path: '/s', value: 'x' }],
    insert: [{ op: 'insert', path: '/l', value: { id: 'i' } }],
    remove: [{ op: 'delete', path: '/l', value: 'j' }],
    bump: [{ op: 'increment', path: '/c' }],
  } });
  const state = RoomState.create(schema);
  for (const action of ['put', 'add', 'insert', 'remove', 'bump']) state.apply(event({ action }));
  const good = (): JsonObject => JSON.parse(JSON.stringify(state.toJSON())) as JsonObject;
  const slot = (snapshot: JsonObject, pointer: string): JsonObject =>
    (snapshot.slots as JsonObject)[pointer] as JsonObject;

  test('round-trips', () => {
    assert.equal(RoomState.fromJSON(schema, good()).stateHash(), state.stateHash());
  });

  const damaged: [string, (snapshot: JsonObject) => Json, string][] = [
    ['not an object', () => [], 'invalid_argument'],
    ['another version', (s) => ({ ...s, version: 2 }), 'invalid_argument'],
    ['no slots', (s) => ({ ...s, slots: undefined as unknown as Json }), 'invalid_argument'],
    ['a document that differs', (s) => ({ ...s, document: { ...(s.document as JsonObject),
      t: 2 } }), 'invalid_argument'],
    ['a negative lamport in a stamp', (s) => {
      (slot(s, '/t').winner as Json[])[0] = -1;
      return s;
    }, 'invalid_argument'],
    ['a server time that is no number', (s) => {
      (slot(s, '/t').winner as Json[])[1] = 'soon';
      return s;
    }, 'invalid_argument'],
    ['a counter sum as a number', (s) => {
      slot(s, '/c').sum = 1;
      return s;
    }, 'invalid_argument'],
    ['a set element listed twice', (s) => {
      const elements = slot(s, '/s').elements as Json[];
      elements.push(elements[0] as Json);
      return s;
    }, 'invalid_argument'],
    ['an item both present and deleted', (s) => {
      (slot(s, '/l').tombstones as JsonObject).i = [1, '1', 'ann', 'z'];
      return s;
    }, 'invalid_argument'],
    ['an item whose id differs from its key', (s) => {
      ((slot(s, '/l').items as JsonObject).i as JsonObject).item = { id: 'k' };
      return s;
    }, 'invalid_argument'],
    ['a slot whose policy the schema changed', (s) => {
      slot(s, '/t').policy = 'set';
      return s;
    }, 'failed_precondition'],
    ['a slot the schema has no policy for', (s) => {
      (s.slots as JsonObject)['/gone'] = slot(s, '/t');
      return s;
    }, 'failed_precondition'],
  ];
  for (const [what, damage, code] of damaged) {
    test(`refuses ${what} with ${code}`, () => {
      assert.throws(() => RoomState.fromJSON(schema, damage(good())), isCode(code));
    });
  }
});
