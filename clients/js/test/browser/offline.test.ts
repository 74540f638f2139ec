// SPDX-License-Identifier: Apache-2.0
// Offline: a participant loses the network, edits, reloads the page while
// still offline (the service worker serves the shell, IndexedDB keeps the
// room and the outbox), comes back, and its edits reach the server exactly
// once and the other participant's screen. Then a conflict: two budgets set
// concurrently while one of the two is offline; the loser sees a notice.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  addActivity,
  addPacking,
  join,
  rendered,
  roomLog,
  setBudget,
  startHarness,
  vote,
  waitConverged,
  waitReady,
  waitServiceWorker,
  waitStatus,
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

test('offline edits survive an offline reload and arrive exactly once', async () => {
  const room = 'offline';
  const ann = await join(h, room, 'Ann');
  const bob = await join(h, room, 'Bob');
  await addActivity(bob.page, 'Ghibli Museum');
  await waitConverged([ann, bob], {
    since: performance.now(),
    withinMs: 2000,
    where: (r) => r.activities.length === 1,
  });
  await waitServiceWorker(ann.page);
  const participant = await ann.page.getByTestId('app').getAttribute('data-participant');
  assert.ok(participant);

  await ann.context.setOffline(true);
  await waitStatus(ann.page, 'offline');
  await addActivity(ann.page, 'Karaoke night');
  await addPacking(ann.page, 'Power adapter');
  await vote(ann.page, 'Ghibli Museum');
  await ann.page.waitForSelector('[data-testid="status"][data-pending="3"]', { state: 'attached' });

  // Reload without a network: the shell comes from the service worker, the
  // room and the three pending actions from IndexedDB.
  await ann.page.reload();
  await waitReady(ann.page);
  assert.equal(
    await ann.page.getByTestId('app').getAttribute('data-participant'),
    participant,
    'same participant after reload',
  );
  await waitStatus(ann.page, 'offline');
  await ann.page.waitForSelector('[data-testid="status"][data-pending="3"]', { state: 'attached' });
  // Her pending edits are back on screen (what the confirmed room shows under
  // them is the next test's subject).
  const offline = await rendered(ann.page);
  assert.ok(
    offline.activities.some((a) => a.name === 'Karaoke night'),
    JSON.stringify(offline),
  );
  assert.deepEqual(
    offline.packing.map((p) => p.item),
    ['Power adapter'],
  );
  assert.equal(
    await ann.page
      .locator('[data-testid="activity"].pending', { hasText: 'Karaoke night' })
      .count(),
    1,
    'the offline activity is shown as pending',
  );
  assert.deepEqual(
    await rendered(bob.page).then((r) => r.activities.length),
    1,
    'nothing reached Bob while Ann was offline',
  );

  await ann.context.setOffline(false);
  await waitSynced(ann.page);
  await waitConverged([ann, bob], {
    since: performance.now(),
    withinMs: 2000,
    where: (r) =>
      r.activities.length === 2 && r.packing.length === 1 && r.activities[0]!.votes === '1',
  });

  const log = await roomLog(h.server, room);
  const mine = log.filter((e) => e.participant === participant && !e.system);
  const count = (action: string, field: string, value: string) =>
    mine.filter((e) => e.action === action && e.payload?.[field] === value).length;
  assert.equal(count('activity_added', 'name', 'Karaoke night'), 1, 'activity once');
  assert.equal(count('packing_added', 'item', 'Power adapter'), 1, 'packing item once');
  assert.equal(mine.filter((e) => e.action === 'vote_cast').length, 1, 'vote once');
  assert.equal(mine.length, 3, `Ann's events: ${JSON.stringify(mine)}`);
  assert.deepEqual(bob.errors, []);
});

// RoomClient keeps the confirmed room in IndexedDB for an offline start: it
// saves it at most a second after events arrive and at once when the
// connection is lost, so a page reloaded offline shows the room as last seen.
test(
  'an offline reload shows the room as last seen online',
  async () => {
    const room = 'offline-cache';
    const ann = await join(h, room, 'Ann');
    const bob = await join(h, room, 'Bob');
    await addActivity(bob.page, 'Meiji Shrine');
    await addPacking(ann.page, 'Passport');
    await waitConverged([ann, bob], {
      since: performance.now(),
      withinMs: 2000,
      where: (r) => r.activities.length === 1 && r.packing.length === 1,
    });
    await waitSynced(ann.page);
    await waitServiceWorker(ann.page);
    const before = await rendered(ann.page);

    await ann.context.setOffline(true);
    await waitStatus(ann.page, 'offline');
    await ann.page.reload();
    await waitReady(ann.page);
    await waitStatus(ann.page, 'offline');
    assert.deepEqual(await rendered(ann.page), before);
  },
);

test('the losing budget edit shows a conflict notice', async () => {
  const room = 'conflict';
  const ann = await join(h, room, 'Ann');
  const bob = await join(h, room, 'Bob');
  await setBudget(bob.page, '900');
  await waitConverged([ann, bob], {
    since: performance.now(),
    withinMs: 2000,
    where: (r) => r.budget === '€900',
  });

  // Ann edits offline; Bob, online, keeps working and then sets the budget:
  // his edit has seen more of the room (a higher Lamport clock), so it wins.
  await ann.context.setOffline(true);
  await waitStatus(ann.page, 'offline');
  await setBudget(ann.page, '1200');
  assert.equal((await rendered(ann.page)).budget, '€1,200');
  await addPacking(bob.page, 'Sunscreen');
  await setBudget(bob.page, '1500');
  await waitSynced(bob.page);

  await ann.context.setOffline(false);
  const toast = ann.page.getByTestId('conflict-toast');
  await toast.waitFor({ timeout: 5000 });
  const text = (await toast.textContent()) ?? '';
  assert.match(text, /Your budget change to €1,200 was replaced by Bob’s €1,500/);
  await waitConverged([ann, bob], {
    since: performance.now(),
    withinMs: 2000,
    where: (r) => r.budget === '€1,500',
  });
  assert.equal(
    await bob.page.getByTestId('conflict-toast').count(),
    0,
    'the winner sees no notice',
  );
  assert.deepEqual(
    ann.errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|WebSocket/.test(e)),
    [],
  );
  assert.deepEqual(bob.errors, []);
});
