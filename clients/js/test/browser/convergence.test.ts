// SPDX-License-Identifier: Apache-2.0
// Three participants in three browser contexts edit one room at the same time
// (activities, votes, packing items, the budget) and every page renders the
// same trip within 1 s of the last edit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  addActivity,
  addPacking,
  join,
  setBudget,
  startHarness,
  vote,
  waitConverged,
  waitSynced,
  type Harness,
} from './harness.js';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

test('three contexts editing concurrently converge within 1 s', async () => {
  const room = 'converge';
  const ann = await join(h, room, 'Ann');
  const bob = await join(h, room, 'Bob');
  const cleo = await join(h, room, 'Cleo');
  const everyone = [ann, bob, cleo];

  // Something to vote on, seen by everyone first.
  await addActivity(ann.page, 'Tsukiji breakfast');
  await waitConverged(everyone, {
    since: performance.now(),
    withinMs: 2000,
    where: (r) => r.activities.length === 1,
  });

  // Now all three at once.
  await Promise.all([
    (async () => {
      await addActivity(ann.page, 'Sumo practice');
      await vote(ann.page, 'Tsukiji breakfast');
      await addPacking(ann.page, 'Rail pass');
      await setBudget(ann.page, '1200');
    })(),
    (async () => {
      await addActivity(bob.page, 'Onsen in Hakone');
      await vote(bob.page, 'Tsukiji breakfast');
      await addPacking(bob.page, 'Umbrella');
      await setBudget(bob.page, '1500');
    })(),
    (async () => {
      await addPacking(cleo.page, 'Rail pass');
      await addActivity(cleo.page, 'teamLab Planets');
      await vote(cleo.page, 'Tsukiji breakfast');
      await setBudget(cleo.page, '1800');
    })(),
  ]);
  const lastEdit = performance.now();

  const { rendering, elapsedMs } = await waitConverged(everyone, {
    since: lastEdit,
    withinMs: 1000,
    where: (r) =>
      r.activities.length === 4 && r.packing.length === 2 && r.activities[0]!.votes === '3',
  });
  // Union of everyone's additions; each vote counted once; one budget won.
  assert.deepEqual(rendering.activities.map((a) => a.name).sort(), [
    'Onsen in Hakone',
    'Sumo practice',
    'Tsukiji breakfast',
    'teamLab Planets',
  ]);
  assert.deepEqual(
    rendering.packing.map((p) => p.item),
    ['Rail pass', 'Umbrella'],
  );
  assert.ok(['€1,200', '€1,500', '€1,800'].includes(rendering.budget), rendering.budget);
  console.log(`converged ${elapsedMs.toFixed(0)} ms after the last edit`);

  for (const p of everyone) {
    await waitSynced(p.page);
    assert.deepEqual(p.errors, [], `${p.name}'s page logged errors`);
  }
});
