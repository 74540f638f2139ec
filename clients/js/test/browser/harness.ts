// SPDX-License-Identifier: Apache-2.0
// Shared harness of the demo's browser tests: a real `vellum serve` with
// --demo-dir (the built demo/dist), Debian Chromium, one browser context per
// participant, and readers of what each page *renders* (the DOM, not the
// client's memory), so that convergence means the same thing on every screen.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { packageRoot, removeDataDir, startServer, type RunningServer } from '../support/server.js';

export const demoDist = path.join(packageRoot, 'demo', 'dist');

export interface Harness {
  server: RunningServer;
  browser: Browser;
  close(): Promise<void>;
}

export async function startHarness(extraArgs: string[] = []): Promise<Harness> {
  if (!existsSync(path.join(demoDist, 'index.html'))) {
    throw new Error(`${demoDist} has no build: run \`npm run build:demo\` first`);
  }
  const server = await startServer({ args: ['--demo-dir', demoDist, ...extraArgs] });
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (error) {
    await server.stop();
    removeDataDir(server);
    throw error;
  }
  return {
    server,
    browser,
    async close() {
      await browser.close();
      await server.stop();
      removeDataDir(server);
    },
  };
}

export interface Participant {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions of the page. */
  errors: string[];
}

/**
 * Chromium reports every non-2xx fetch as a console error. The page's first
 * schema check answers 404 until some page has installed the schema (dev
 * mode); that one is expected and is the only one ignored.
 */
function expectedConsoleError(message: ConsoleMessage): boolean {
  return (
    message
      .text()
      .startsWith('Failed to load resource: the server responded with a status of 404') &&
    /\/apps\/trips\/schema$/.test(message.location().url)
  );
}

export function demoUrl(server: RunningServer, room: string, name?: string): string {
  const params = new URLSearchParams({ room });
  if (name !== undefined) params.set('name', name);
  return `${server.url}/demo/?${params.toString()}`;
}

/** Opens the demo as `name` in a new browser context and waits until it is ready. */
export async function join(
  h: Harness,
  room: string,
  name: string,
  options: { live?: boolean } = {},
): Promise<Participant> {
  const context = await h.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !expectedConsoleError(message)) {
      errors.push(`console: ${message.text()} (${message.location().url})`);
    }
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.stack ?? error.message}`));
  await page.goto(demoUrl(h.server, room, name));
  await waitReady(page);
  if (options.live !== false) await waitStatus(page, 'live');
  return { name, context, page, errors };
}

export async function waitReady(page: Page, timeout = 10_000): Promise<void> {
  await page.waitForSelector('[data-testid="app"][data-ready="true"]', {
    state: 'attached',
    timeout,
  });
}

export async function waitStatus(page: Page, status: string, timeout = 10_000): Promise<void> {
  await page.waitForSelector(`[data-testid="status"][data-status="${status}"]`, {
    state: 'attached',
    timeout,
  });
}

/** Waits until the service worker controls the page (the shell is cached). */
export async function waitServiceWorker(page: Page, timeout = 10_000): Promise<void> {
  await page.waitForSelector('[data-testid="app"][data-sw="ready"]', {
    state: 'attached',
    timeout,
  });
}

// ---------------------------------------------------------------------------
// Acting through the UI

export async function addActivity(page: Page, name: string): Promise<void> {
  await page.getByTestId('activity-input').fill(name);
  await page.getByTestId('activity-input').press('Enter');
}

export async function addPacking(page: Page, item: string): Promise<void> {
  await page.getByTestId('packing-input').fill(item);
  await page.getByTestId('packing-input').press('Enter');
}

export async function vote(page: Page, activity: string): Promise<void> {
  await page
    .getByTestId('activity')
    .filter({ has: page.getByText(activity, { exact: true }) })
    .getByTestId('vote')
    .click();
}

export async function setBudget(page: Page, euros: string): Promise<void> {
  const input = page.getByTestId('budget-input');
  await input.fill(euros);
  await input.blur();
}

export async function setTitle(page: Page, title: string): Promise<void> {
  const input = page.getByTestId('title-input');
  await input.fill(title);
  await input.blur();
}

/** Waits until the page's client has no pending action (all acknowledged). */
export async function waitSynced(page: Page, timeout = 10_000): Promise<void> {
  await page.waitForSelector('[data-testid="status"][data-status="live"][data-pending="0"]', {
    state: 'attached',
    timeout,
  });
}

// ---------------------------------------------------------------------------
// Reading what a page renders

export interface Rendered {
  title: string;
  budget: string;
  dates: [string, string];
  activities: { name: string; votes: string; voters: string }[];
  packing: { item: string; packed: boolean }[];
}

export async function rendered(page: Page): Promise<Rendered> {
  return page.evaluate(() => {
    const q = <T extends Element>(id: string) =>
      document.querySelector<T>(`[data-testid="${id}"]`)!;
    return {
      title: q<HTMLInputElement>('title-input').value,
      budget: q('budget-value').textContent ?? '',
      dates: [q<HTMLInputElement>('date-from').value, q<HTMLInputElement>('date-to').value] as [
        string,
        string,
      ],
      activities: Array.from(document.querySelectorAll('[data-testid="activity"]')).map((li) => ({
        name: li.querySelector('[data-testid="activity-name"]')!.textContent ?? '',
        votes: li.querySelector('[data-testid="vote"]')!.textContent ?? '',
        voters: li.querySelector('[data-testid="vote"]')!.getAttribute('data-voters') ?? '',
      })),
      packing: Array.from(
        document.querySelectorAll<HTMLElement>('[data-testid="packing-item"]'),
      ).map((li) => ({
        item: li.dataset.item ?? '',
        packed: li.querySelector<HTMLInputElement>('[data-testid="packing-check"]')!.checked,
      })),
    };
  });
}

/** A line-by-line diff of two renderings (JSON), for failure messages. */
export function diffLines(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] === lb[i]) out.push(`  ${la[i]}`);
    else {
      if (la[i] !== undefined) out.push(`- ${la[i]}`);
      if (lb[i] !== undefined) out.push(`+ ${lb[i]}`);
    }
  }
  return out.join('\n');
}

/**
 * Polls every page's rendering until all are equal (and, with `where`, satisfy
 * it); fails with a diff when that has not happened `withinMs` after `since`.
 */
export async function waitConverged(
  participants: Participant[],
  options: { since: number; withinMs: number; where?: (r: Rendered) => boolean },
): Promise<{ rendering: Rendered; elapsedMs: number }> {
  const deadline = options.since + options.withinMs;
  for (;;) {
    const all = await Promise.all(participants.map((p) => rendered(p.page)));
    const texts = all.map((r) => JSON.stringify(r, null, 1));
    const equal = texts.every((t) => t === texts[0]);
    if (equal && (!options.where || options.where(all[0]!))) {
      return { rendering: all[0]!, elapsedMs: performance.now() - options.since };
    }
    if (performance.now() > deadline) {
      const report = participants
        .slice(1)
        .map(
          (p, i) =>
            `${participants[0]!.name} vs ${p.name}:\n${diffLines(texts[0]!, texts[i + 1]!)}`,
        )
        .join('\n\n');
      assert.fail(
        `pages did not converge within ${options.withinMs} ms of the last edit` +
          `${equal ? ' (equal, but the condition does not hold)' : ''}:\n${report}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface LoggedEvent {
  seq: number;
  id: string;
  action: string;
  payload?: Record<string, unknown>;
  participant: string;
  system?: boolean;
}

/** The room's committed events, from the server's log (GET /rooms/trips/{room}/events). */
export async function roomLog(server: RunningServer, room: string): Promise<LoggedEvent[]> {
  const events: LoggedEvent[] = [];
  let after = 0;
  for (;;) {
    const response = await fetch(
      `${server.url}/rooms/trips/${room}/events?after=${after}&limit=1000`,
    );
    assert.equal(response.status, 200, await response.clone().text());
    const body = (await response.json()) as { events: LoggedEvent[]; seq: number };
    events.push(...body.events);
    if (body.events.length === 0) return events;
    after = body.events[body.events.length - 1]!.seq;
  }
}
