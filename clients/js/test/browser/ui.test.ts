// SPDX-License-Identifier: Apache-2.0
// The time-travel slider shows an earlier state read-only; the demo renders
// without console errors, and a screenshot is kept in build/artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { repoRoot } from '../support/server.js';
import {
  addActivity,
  addPacking,
  join,
  rendered,
  roomLog,
  setBudget,
  setTitle,
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

async function seq(page: Page): Promise<number> {
  return page.evaluate(
    () => (window as unknown as { vellumDemo: { client: { seq: number } } }).vellumDemo.client.seq,
  );
}

async function slideTo(page: Page, value: number): Promise<void> {
  await page.getByTestId('time-slider').evaluate((el, v) => {
    const slider = el as HTMLInputElement;
    slider.value = String(v);
    slider.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

test('the time-travel slider shows an earlier state, read-only', async () => {
  const ann = await join(h, 'travel', 'Ann');
  await setTitle(ann.page, 'Kyoto in autumn');
  await addActivity(ann.page, 'Fushimi Inari at dawn');
  await setBudget(ann.page, '800');
  await waitSynced(ann.page);
  const earlier = await seq(ann.page);
  await addActivity(ann.page, 'Tea ceremony');
  await setBudget(ann.page, '950');
  await setTitle(ann.page, 'Kyoto and Nara');
  await waitSynced(ann.page);
  const live = await rendered(ann.page);
  assert.equal(live.activities.length, 2);

  await slideTo(ann.page, earlier);
  await ann.page.getByTestId('travel-banner').waitFor();
  await ann.page.waitForSelector(`[data-testid="app"][data-travel-seq="${earlier}"]`, {
    state: 'attached',
  });
  const past = await rendered(ann.page);
  assert.equal(past.title, 'Kyoto in autumn');
  assert.equal(past.budget, '€800');
  assert.deepEqual(
    past.activities.map((a) => a.name),
    ['Fushimi Inari at dawn'],
  );
  assert.ok(
    await ann.page.getByTestId('workspace').evaluate((el) => (el as HTMLFieldSetElement).disabled),
    'read-only while travelling',
  );
  assert.ok(await ann.page.getByTestId('activity-input').isDisabled());
  assert.match(
    (await ann.page.getByTestId('travel-label').textContent()) ?? '',
    new RegExp(`change ${earlier} of`),
  );

  await ann.page.getByTestId('back-to-live').click();
  await ann.page.getByTestId('travel-banner').waitFor({ state: 'hidden' });
  assert.deepEqual(await rendered(ann.page), live);
  assert.ok(await ann.page.getByTestId('activity-input').isEnabled());
  assert.deepEqual(ann.errors, []);
});

test('a budget drag: others follow it live, the room records where it ended', async () => {
  const room = 'drag';
  const ann = await join(h, room, 'Ann');
  const bob = await join(h, room, 'Bob');
  // Ann's page notes every "what Bob is doing" text it shows; Bob's counts slider inputs.
  await ann.page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { seen: string[] }).seen = seen;
    const people = document.querySelector('[data-testid="people"]')!;
    new MutationObserver(() => {
      for (const el of Array.from(people.querySelectorAll('.person-doing'))) {
        seen.push(el.textContent ?? '');
      }
    }).observe(people, { subtree: true, childList: true, characterData: true });
  });
  const slider = bob.page.getByTestId('budget-range');
  await slider.evaluate((el) => {
    (window as unknown as { inputs: number }).inputs = 0;
    el.addEventListener('input', () => (window as unknown as { inputs: number }).inputs++);
  });
  const box = (await slider.boundingBox())!;
  const y = box.y + box.height / 2;
  await bob.page.mouse.move(box.x + 4, y);
  await bob.page.mouse.down();
  for (let i = 1; i <= 90; i++)
    await bob.page.mouse.move(box.x + 4 + (i * box.width * 0.6) / 90, y);
  // Hold still (still pressed) until Ann has seen the drag through presence.
  await ann.page.waitForFunction(() =>
    (window as unknown as { seen: string[] }).seen.some((t) =>
      t.startsWith('adjusting the budget: €'),
    ),
  );
  await bob.page.mouse.up();

  const final = (await bob.page.getByTestId('budget-value').textContent()) ?? '';
  await waitSynced(bob.page);
  await waitConverged([ann, bob], {
    since: performance.now(),
    withinMs: 2000,
    where: (r) => r.budget === final,
  });
  const inputs = await bob.page.evaluate(() => (window as unknown as { inputs: number }).inputs);
  const drags = (await roomLog(h.server, room)).filter((e) => e.action === 'budget_set');
  assert.ok(inputs >= 30, `${inputs} slider inputs`);
  // One event when the drag pauses (the coalescer's 50 ms quiet window) or
  // at the latest every second; a loaded machine makes a few more pauses.
  assert.ok(
    drags.length >= 1 && drags.length <= inputs / 3,
    `${drags.length} budget_set events for ${inputs} slider inputs`,
  );
  assert.equal(
    drags[drags.length - 1]!.payload?.cents,
    Number(await slider.inputValue()),
    'the last event is where the drag ended',
  );
  assert.deepEqual([...ann.errors, ...bob.errors], []);
});

test('the demo renders without console errors (screenshot: build/artifacts/demo.png)', async () => {
  const room = 'tokyo';
  const ann = await join(h, room, 'Ann Lee');
  const bob = await join(h, room, 'Bob');
  const cleo = await join(h, room, 'Cleo');
  await setTitle(ann.page, 'Tokyo in spring');
  await ann.page.getByTestId('date-from').fill('2026-04-02');
  await ann.page.getByTestId('date-to').fill('2026-04-12');
  for (const name of [
    'Cherry blossoms in Ueno Park',
    'Tsukiji outer market',
    'Day trip to Nikko',
    'teamLab Planets',
  ]) {
    await addActivity(ann.page, name);
  }
  await addActivity(bob.page, 'Shibuya crossing at night');
  for (const item of ['Rail pass', 'Umbrella', 'Power adapter', 'Comfortable shoes'])
    await addPacking(cleo.page, item);
  await setBudget(bob.page, '2400');
  await waitConverged([ann, bob, cleo], {
    since: performance.now(),
    withinMs: 3000,
    where: (r) => r.activities.length === 5 && r.packing.length === 4,
  });
  await vote(ann.page, 'Cherry blossoms in Ueno Park');
  await vote(bob.page, 'Cherry blossoms in Ueno Park');
  await vote(cleo.page, 'Cherry blossoms in Ueno Park');
  await vote(bob.page, 'Day trip to Nikko');
  await vote(cleo.page, 'teamLab Planets');
  await ann.page
    .getByTestId('packing-item')
    .filter({ hasText: 'Rail pass' })
    .getByTestId('packing-check')
    .check();
  await bob.page.getByTestId('budget-input').focus(); // presence: "adjusting the budget"
  for (const p of [ann, bob, cleo]) await waitSynced(p.page);
  await waitConverged([ann, bob, cleo], {
    since: performance.now(),
    withinMs: 2000,
    where: (r) => r.packing.some((p) => p.item === 'Rail pass' && p.packed),
  });
  await ann.page.waitForFunction(
    () => document.querySelectorAll('.person:not(.away)').length === 3,
  );
  await ann.page.getByTestId('packing-input').focus();
  await ann.page.getByTestId('packing-input').blur();

  const dir = path.join(repoRoot, 'build', 'artifacts');
  mkdirSync(dir, { recursive: true });
  // Tall enough for the whole page, so the sticky history bar sits below the content.
  await ann.page.setViewportSize({ width: 1280, height: 1100 });
  await ann.page.screenshot({ path: path.join(dir, 'demo.png'), fullPage: true });

  for (const p of [ann, bob, cleo])
    assert.deepEqual(p.errors, [], `${p.name}'s page logged errors`);
});
