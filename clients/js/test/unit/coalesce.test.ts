// SPDX-License-Identifier: Apache-2.0
// The coalescer with a manual clock: a key is released once it has been quiet
// for the window (or after the maximum wait), the newest action wins, and
// released actions keep the order they were made in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coalescer, type CoalescerTimers } from '../../src/coalesce.js';
import type { PendingAction } from '../../src/types.js';

/** A manual clock: advance(ms) runs the timers that are due, in time order. */
class ManualTimers implements CoalescerTimers {
  now = 0;
  private nextHandle = 0;
  private readonly due = new Map<number, { at: number; callback: () => void }>();
  set(callback: () => void, ms: number): unknown {
    const handle = ++this.nextHandle;
    this.due.set(handle, { at: this.now + ms, callback });
    return handle;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const next = [...this.due.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > end) break;
      this.due.delete(next[0]);
      this.now = next[1].at;
      next[1].callback();
    }
    this.now = end;
  }
}

let counter = 0;
function act(coalesceKey?: string, payload: PendingAction['payload'] = {}): PendingAction {
  counter++;
  const id = `a${counter}`;
  return { id, action: 'moved', payload, lamport: counter, clientTime: 0, coalesceKey };
}

function setup(windowMs = 50, maxWaitMs = 1_000) {
  const timers = new ManualTimers();
  const released: PendingAction[][] = [];
  const replaced: Array<[string, string]> = [];
  const coalescer = new Coalescer({
    windowMs,
    maxWaitMs,
    timers,
    release: (actions) => released.push(actions),
    replaced: (old, by) => replaced.push([old.id, by.id]),
  });
  const ids = () => released.map((batch) => batch.map((a) => a.payload['name']));
  return { timers, released, replaced, coalescer, ids };
}

test('50 drag updates inside the window become one action: the last', () => {
  const { timers, released, replaced, coalescer } = setup();
  const drags = Array.from({ length: 50 }, (_, x) => act('pin-1', { x }));
  for (const drag of drags) coalescer.submit(drag);
  assert.equal(released.length, 0);
  assert.equal(coalescer.waitingCount, 1);
  timers.advance(49);
  assert.equal(released.length, 0);
  timers.advance(1);
  assert.deepEqual(released, [[drags[49]]]);
  assert.equal(replaced.length, 49);
  assert.deepEqual(replaced[0], [drags[0]!.id, drags[1]!.id]);
  assert.deepEqual(coalescer.stats, { submitted: 50, coalesced: 49, released: 1 });
});

test('a drag is released when it pauses for the window, not while it moves', () => {
  const { timers, released, coalescer } = setup();
  for (let x = 0; x < 20; x++) {  // one update every 10 ms for 200 ms
    coalescer.submit(act('pin', { x }));
    timers.advance(10);
  }
  assert.equal(released.length, 0);
  timers.advance(39);  // 49 ms after the last update
  assert.equal(released.length, 0);
  timers.advance(1);
  assert.deepEqual(released.map((batch) => batch[0]!.payload['x']), [19]);
  for (let x = 20; x < 25; x++) {  // a second movement after the pause
    coalescer.submit(act('pin', { x }));
    timers.advance(10);
  }
  timers.advance(50);
  assert.deepEqual(released.map((batch) => batch[0]!.payload['x']), [19, 24]);
});

test('a drag that never pauses is released every maxWaitMs', () => {
  const { timers, released, coalescer } = setup(50, 300);
  for (let x = 0; x < 100; x++) {  // one update every 10 ms for 1 s
    coalescer.submit(act('pin', { x }));
    timers.advance(10);
  }
  // Released at 300, 600 and 900 ms (the updates made at 290, 590, 890 ms).
  assert.deepEqual(released.map((batch) => batch[0]!.payload['x']), [29, 59, 89]);
  timers.advance(50);
  assert.deepEqual(released.map((batch) => batch[0]!.payload['x']), [29, 59, 89, 99]);
});

test('actions without a key go at once, after the keyed ones made before them', () => {
  const { released, coalescer, ids } = setup();
  coalescer.submit(act('pin', { name: 'drag' }));
  coalescer.submit(act(undefined, { name: 'vote' }));
  assert.deepEqual(ids(), [['drag'], ['vote']]);
  coalescer.submit(act(undefined, { name: 'vote2' }));
  assert.deepEqual(ids(), [['drag'], ['vote'], ['vote2']]);
  assert.equal(released.length, 3);
});

test('a replacement is released after the actions made before it', () => {
  const { timers, coalescer, ids } = setup();
  coalescer.submit(act('a', { name: 'a1' }));
  timers.advance(10);
  coalescer.submit(act('b', { name: 'b1' }));
  timers.advance(10);
  coalescer.submit(act('a', { name: 'a2' }));  // made after b1
  timers.advance(30);  // 30 ms after a2, 40 ms after b1: both still waiting
  assert.deepEqual(ids(), []);
  timers.advance(10);  // b quiet for 50 ms: b1 goes alone (a2 was made after it)
  assert.deepEqual(ids(), [['b1']]);
  timers.advance(10);  // a quiet for 50 ms since a2
  assert.deepEqual(ids(), [['b1'], ['a2']]);
  coalescer.submit(act('b', { name: 'b2' }));
  timers.advance(10);
  coalescer.submit(act('a', { name: 'a3' }));
  timers.advance(10);
  coalescer.submit(act('b', { name: 'b3' }));  // made after a3: b now queued behind a
  timers.advance(40);  // a quiet for 50 ms: a3 goes, and nothing made after it
  assert.deepEqual(ids(), [['b1'], ['a2'], ['a3']]);
  timers.advance(10);
  assert.deepEqual(ids(), [['b1'], ['a2'], ['a3'], ['b3']]);
  timers.advance(2_000);  // every timer of a released key was cancelled
  assert.deepEqual(ids(), [['b1'], ['a2'], ['a3'], ['b3']]);
});

test('a key released early with an older one keeps nothing scheduled', () => {
  const { timers, coalescer, ids } = setup(50, 200);
  coalescer.submit(act('a', { name: 'a1' }));
  timers.advance(10);
  coalescer.submit(act('b', { name: 'b1' }));
  for (let i = 2; i <= 30; i++) {  // b keeps moving; a stays put
    timers.advance(10);
    coalescer.submit(act('b', { name: `b${i}` }));
  }
  // a was quiet at 50 ms and went alone; b hit its maximum wait at 210 ms.
  assert.deepEqual(ids(), [['a1'], ['b20']]);
  timers.advance(50);
  assert.deepEqual(ids(), [['a1'], ['b20'], ['b30']]);
});

test('a key whose window ended starts a new window', () => {
  const { timers, coalescer, ids } = setup();
  coalescer.submit(act('a', { name: 'a1' }));
  timers.advance(50);
  coalescer.submit(act('a', { name: 'a2' }));
  coalescer.submit(act('a', { name: 'a3' }));
  timers.advance(50);
  assert.deepEqual(ids(), [['a1'], ['a3']]);
  assert.equal(coalescer.stats.coalesced, 1);
});

test('flush releases everything waiting, in order; a window of 0 coalesces nothing', () => {
  const { coalescer, ids, timers } = setup();
  coalescer.submit(act('a', { name: 'a1' }));
  coalescer.submit(act('b', { name: 'b1' }));
  coalescer.flush();
  assert.deepEqual(ids(), [['a1', 'b1']]);
  timers.advance(1000);
  assert.equal(coalescer.waitingCount, 0);

  const eager = setup(0);
  eager.coalescer.submit(act('a', { name: 'x1' }));
  eager.coalescer.submit(act('a', { name: 'x2' }));
  assert.deepEqual(eager.ids(), [['x1'], ['x2']]);
});

test('the real timers release after the window', async () => {
  const released: PendingAction[] = [];
  const coalescer = new Coalescer({ windowMs: 20, release: (a) => released.push(...a) });
  coalescer.submit(act('k'));
  coalescer.submit(act('k'));
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(released.length, 1);
  assert.equal(coalescer.stats.coalesced, 1);
});
