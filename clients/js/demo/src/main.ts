// SPDX-License-Identifier: Apache-2.0
// The trip planner (seed 000): a Vellum room edited by everyone who opens
// /demo/?room=<room>. State, the offline outbox and conflicts come from
// RoomClient; this file only renders them and turns clicks into actions.
import { IndexedDbOutboxStorage, RoomClient } from '../../src/index.js';
import type {
  Conflict,
  ConnectionStatus,
  JsonObject,
  PresenceEntry,
  RoomEvent,
} from '../../src/types.js';
import { $, h, reconcile, setAttr, setText } from './dom.js';
import { euros, hueOf, initials, parseEuros, plural } from './format.js';
import { identityFor, lastName, type Identity } from './identity.js';
import { APP, ensureSchema } from './schema.js';
import { readTrip, type Activity, type Trip } from './trip.js';

declare global {
  interface Window {
    /** For tests, benchmarks and the curious: the page's room client. */
    vellumDemo?: { client: RoomClient; participant: string; room: string };
  }
}

const app = $('app');
const workspace = $<HTMLFieldSetElement>('workspace');

// ---------------------------------------------------------------------------
// Service worker: the app shell (index.html, app.js, style.css) is served
// cache-first, so a reload works offline; the room and the outbox come back
// from IndexedDB through RoomClient.

function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) return;
  const markReady = () => {
    if (navigator.serviceWorker.controller) app.dataset.sw = 'ready';
  };
  navigator.serviceWorker.addEventListener('controllerchange', markReady);
  markReady();
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch((error: unknown) => {
    // A page without a service worker still works online; say why offline won't.
    console.warn('service worker not registered:', error);
  });
}

// ---------------------------------------------------------------------------
// Who and where

function roomFromUrl(params: URLSearchParams): string {
  const room = params.get('room') ?? 'tokyo';
  return /^[A-Za-z0-9_.-]{1,128}$/.test(room) ? room : 'tokyo';
}

async function askName(): Promise<string> {
  const dialog = $<HTMLDialogElement>('name-dialog');
  const input = $<HTMLInputElement>('name-input');
  input.value = lastName() ?? '';
  dialog.addEventListener('cancel', (event) => event.preventDefault());
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', function onClose() {
      const name = input.value.trim();
      if (!name) {
        dialog.showModal();
        return;
      }
      dialog.removeEventListener('close', onClose);
      resolve(name);
    });
  });
}

async function identify(params: URLSearchParams): Promise<Identity> {
  let name = params.get('name')?.trim() || lastName();
  if (!name) {
    name = await askName();
    params.set('name', name);
    history.replaceState(null, '', `${location.pathname}?${params.toString()}`);
  }
  return identityFor(name);
}

// ---------------------------------------------------------------------------
// Rendering

interface View {
  client: RoomClient;
  me: Identity;
  /** Display names seen so far (presence), by participant id. */
  names: Map<string, string>;
  /** Recent committed events by id (conflict notices name the winner's value). */
  events: Map<string, RoomEvent>;
  /** serverTime (ms) by seq, for the time-travel label. */
  times: Map<number, number>;
  /** The seq shown by the time-travel slider; undefined = live. */
  travelSeq: number | undefined;
  /** The budget slider is being dragged: don't move it under the pointer. */
  draggingBudget: boolean;
}

function nameOf(view: View, participant: string): string {
  const known = view.names.get(participant);
  if (known) return known;
  // Ids are "<slug>-<8 hex>" (identity.ts): fall back to the slug.
  const base = participant.replace(/-[0-9a-f]{8}$/, '');
  return base.charAt(0).toUpperCase() + base.slice(1);
}

function avatar(view: View, participant: string, small = false): HTMLElement {
  const name = nameOf(view, participant);
  const letters = small ? initials(name).slice(0, 1) : initials(name);
  const el = h('span', { class: 'avatar', title: name, 'aria-hidden': 'true' }, letters);
  el.style.setProperty('--hue', String(hueOf(participant)));
  return el;
}

/** Sets a form control's value only when it differs (and never under the user's cursor). */
function setValue(input: HTMLInputElement, value: string, editable: boolean): void {
  if (editable && document.activeElement === input) return;
  if (input.value !== value) input.value = value;
}

function renderTrip(view: View, trip: Trip, confirmed: Trip): void {
  const editable = view.travelSeq === undefined;

  // Title and dates: don't overwrite what the user is typing.
  const title = $<HTMLInputElement>('title-input');
  setValue(title, trip.title ?? '', editable);
  title.classList.toggle('pending', editable && trip.title !== confirmed.title);
  setValue($<HTMLInputElement>('date-from'), trip.dates?.from ?? '', editable);
  setValue($<HTMLInputElement>('date-to'), trip.dates?.to ?? '', editable);

  // Budget
  const budgetPending = editable && trip.budget !== confirmed.budget;
  const value = $('budget-value');
  setText(value, trip.budget === undefined ? '—' : euros(trip.budget));
  setAttr(value, 'data-cents', trip.budget === undefined ? null : String(trip.budget));
  value.classList.toggle('pending', budgetPending);
  $('budget-badge').hidden = !budgetPending;
  const input = $<HTMLInputElement>('budget-input');
  if (!editable || document.activeElement !== input) {
    setValue(input, trip.budget === undefined ? '' : String(trip.budget / 100), false);
    input.removeAttribute('aria-invalid');
  }
  const range = $<HTMLInputElement>('budget-range');
  if (!view.draggingBudget || !editable) setValue(range, String(trip.budget ?? 0), false);

  renderActivities(view, trip, confirmed, editable);
  renderPacking(view, trip, confirmed, editable);
}

interface ActivityRow {
  rank: HTMLElement;
  meta: HTMLElement;
  voters: HTMLElement;
  vote: HTMLButtonElement;
  /** What the row shows, to skip rows that did not change (long lists, busy rooms). */
  shown: string;
}
const activityRows = new WeakMap<HTMLElement, ActivityRow>();

function renderActivities(view: View, trip: Trip, confirmed: Trip, editable: boolean): void {
  const confirmedIds = new Set(confirmed.activities.map((a) => a.id));
  reconcile<Activity>(
    $('activity-list'),
    trip.activities,
    (a) => a.id,
    (a) => {
      const vote = h('button', { type: 'button', class: 'vote', 'data-testid': 'vote' });
      vote.addEventListener('click', () => {
        const voted = vote.getAttribute('aria-pressed') === 'true';
        view.client.submit(voted ? 'vote_retracted' : 'vote_cast', { activityId: a.id });
      });
      const remove = h(
        'button',
        { type: 'button', class: 'icon-button', 'data-testid': 'remove-activity' },
        '×',
      );
      remove.setAttribute('aria-label', `Remove ${a.name}`);
      remove.title = 'Remove';
      remove.addEventListener('click', () =>
        view.client.submit('activity_removed', { activityId: a.id }),
      );
      const rank = h('span', { class: 'activity-rank', 'aria-hidden': 'true' });
      const meta = h('div', { class: 'activity-meta' });
      const voters = h('span', { class: 'voters' });
      const li = h(
        'li',
        { class: 'activity', 'data-testid': 'activity', 'data-id': a.id },
        rank,
        h(
          'div',
          {},
          h('div', { class: 'activity-name', 'data-testid': 'activity-name' }, a.name),
          meta,
        ),
        voters,
        vote,
        remove,
      );
      activityRows.set(li, { rank, meta, voters, vote, shown: '' });
      return li;
    },
    (li, a, index) => {
      const row = activityRows.get(li)!;
      const voters = trip.votes.get(a.id) ?? [];
      const mine = voters.includes(view.me.participant);
      const rowPending = editable && !confirmedIds.has(a.id);
      const votePending =
        editable && mine !== (confirmed.votes.get(a.id) ?? []).includes(view.me.participant);
      const addedBy = a.addedBy === view.me.participant ? 'you' : nameOf(view, a.addedBy);
      const shown = [
        index,
        addedBy,
        voters.join(','),
        rowPending,
        votePending,
        view.names.size,
      ].join('\n');
      if (row.shown === shown) return;
      row.shown = shown;
      li.classList.toggle('pending', rowPending);
      setText(row.rank, String(index + 1));
      setText(row.meta, `added by ${addedBy}`);
      setText(row.vote, String(voters.length));
      setAttr(row.vote, 'aria-pressed', String(mine));
      setAttr(
        row.vote,
        'aria-label',
        `${mine ? 'Remove your vote for' : 'Vote for'} ${a.name}` +
          ` (${plural(voters.length, 'vote', 'votes')})`,
      );
      setAttr(row.vote, 'data-voters', [...voters].sort().join(','));
      row.vote.classList.toggle('pending', votePending);
      row.voters.replaceChildren(...voters.slice(0, 4).map((p) => avatar(view, p, true)));
    },
  );
  setText(
    $('activity-count'),
    trip.activities.length ? plural(trip.activities.length, 'idea', 'ideas') : '',
  );
  const empty = $('activities-empty');
  empty.hidden = trip.activities.length > 0;
  setText(
    empty,
    editable ? 'No activities yet — add the first idea.' : 'No activities at this point.',
  );
}

function renderPacking(view: View, trip: Trip, confirmed: Trip, editable: boolean): void {
  const confirmedItems = new Set(confirmed.packing);
  reconcile<string>(
    $('packing-list'),
    trip.packing,
    (item) => item,
    (item) => {
      const box = h('input', { type: 'checkbox', 'data-testid': 'packing-check' });
      box.addEventListener('change', () => {
        view.client.submit(box.checked ? 'packing_checked' : 'packing_unchecked', { item });
      });
      const remove = h(
        'button',
        { type: 'button', class: 'icon-button', 'data-testid': 'remove-packing' },
        '×',
      );
      remove.setAttribute('aria-label', `Remove ${item}`);
      remove.title = 'Remove';
      remove.addEventListener('click', () => view.client.submit('packing_removed', { item }));
      return h(
        'li',
        { class: 'packing-item', 'data-testid': 'packing-item', 'data-item': item },
        h(
          'label',
          {},
          box,
          h('span', { class: 'packing-label', 'data-testid': 'packing-label' }, item),
        ),
        remove,
      );
    },
    (li, item) => {
      const packed = trip.packed.has(item);
      li.classList.toggle('packed', packed);
      li.classList.toggle(
        'pending',
        editable && (!confirmedItems.has(item) || packed !== confirmed.packed.has(item)),
      );
      const box = li.firstElementChild!.firstElementChild as HTMLInputElement;
      if (box.checked !== packed) box.checked = packed;
    },
  );
  const packedCount = trip.packing.filter((item) => trip.packed.has(item)).length;
  setText(
    $('packing-count'),
    trip.packing.length ? `${packedCount} of ${trip.packing.length} packed` : '',
  );
  const empty = $('packing-empty');
  empty.hidden = trip.packing.length > 0;
  setText(empty, editable ? 'Nothing to pack yet.' : 'Nothing on the list at this point.');
}

const DOING: Record<string, string> = {
  title: 'renaming the trip',
  budget: 'adjusting the budget',
  activities: 'looking at activities',
  packing: 'on the packing list',
};

function renderPeople(view: View, entries: readonly PresenceEntry[]): void {
  for (const e of entries) if (e.name) view.names.set(e.participant, e.name);
  const people = [...entries];
  if (!people.some((e) => e.participant === view.me.participant)) {
    people.push({
      participant: view.me.participant,
      name: view.me.name,
      state: null,
      connected: false,
    });
  }
  people.sort((a, b) => {
    if (a.participant === view.me.participant) return -1;
    if (b.participant === view.me.participant) return 1;
    if (a.connected !== b.connected) return a.connected ? -1 : 1;
    return nameOf(view, a.participant).localeCompare(nameOf(view, b.participant));
  });
  reconcile<PresenceEntry>(
    $('people'),
    people,
    (e) => e.participant,
    (e) =>
      h(
        'li',
        { class: 'person', 'data-testid': 'person', 'data-participant': e.participant },
        avatar(view, e.participant),
        h(
          'div',
          { class: 'person-text' },
          h('span', { class: 'person-name' }),
          h('span', { class: 'person-doing' }),
        ),
        h('span', { class: 'person-dot', 'aria-hidden': 'true' }),
      ),
    (li, e) => {
      const me = e.participant === view.me.participant;
      const here = me ? view.client.status === 'live' : e.connected;
      li.classList.toggle('away', !here);
      const name = li.querySelector('.person-name')!;
      const label = nameOf(view, e.participant);
      if (name.getAttribute('data-label') !== `${label}/${me}`) {
        name.setAttribute('data-label', `${label}/${me}`);
        name.replaceChildren(label, ...(me ? [h('span', { class: 'you' }, ' (you)')] : []));
      }
      const state =
        e.state !== null && typeof e.state === 'object' && !Array.isArray(e.state) ? e.state : {};
      let focus = typeof state.focus === 'string' ? DOING[state.focus] : undefined;
      if (state.focus === 'budget' && typeof state.budget === 'number') {
        focus = `adjusting the budget: ${euros(state.budget)}`;
      }
      setText(
        li.querySelector('.person-doing')!,
        here ? (me ? 'online' : (focus ?? 'online')) : me ? 'offline' : 'away',
      );
    },
  );
  const online = people.filter((e) =>
    e.participant === view.me.participant ? view.client.status === 'live' : e.connected,
  ).length;
  setText($('people-count'), `${online} online`);
}

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  'catching-up': 'Catching up…',
  live: 'Live',
  offline: 'Offline',
  closed: 'Disconnected',
};

function renderStatus(view: View): void {
  const status = view.client.status;
  const pending = view.client.pendingCount;
  const el = $('status');
  setAttr(el, 'data-status', status);
  setAttr(el, 'data-pending', String(pending));
  let text = STATUS_TEXT[status];
  if (pending > 0) text += status === 'live' ? ` · syncing ${pending}` : ` · ${pending} pending`;
  setText($('status-text'), text);
}

// ---------------------------------------------------------------------------
// Conflict notices (seed 002): an edit that lost is never dropped silently.

function describeValue(action: string, payload: JsonObject | undefined): string | undefined {
  if (!payload) return undefined;
  if (action === 'budget_set' && typeof payload.cents === 'number') return euros(payload.cents);
  if (action === 'title_set' && typeof payload.title === 'string') return `“${payload.title}”`;
  if (
    action === 'dates_set' &&
    typeof payload.from === 'string' &&
    typeof payload.to === 'string'
  ) {
    return `${payload.from || '…'} → ${payload.to || '…'}`;
  }
  return undefined;
}

const WHAT: Record<string, string> = {
  budget_set: 'budget change',
  title_set: 'title change',
  dates_set: 'date change',
  activity_added: 'new activity',
  activity_removed: 'removal of an activity',
  vote_cast: 'vote',
  vote_retracted: 'vote removal',
  packing_added: 'packing item',
  packing_removed: 'removal of a packing item',
  packing_checked: 'tick on the packing list',
  packing_unchecked: 'untick on the packing list',
};

function conflictMessage(view: View, conflict: Conflict): string {
  const { action } = conflict;
  const what = WHAT[action.action] ?? `“${action.action}”`;
  const mine = describeValue(action.action, action.payload);
  if (conflict.reason === 'rejected') {
    const why = conflict.error?.message ?? 'rejected by the server';
    return `Your ${what}${mine ? ` to ${mine}` : ''} was not accepted: ${why}.`;
  }
  const winnerEvent = conflict.by ? view.events.get(conflict.by) : undefined;
  const winnerId = conflict.winner ?? winnerEvent?.participant;
  const who = winnerId
    ? winnerId === view.me.participant
      ? 'your other'
      : `${nameOf(view, winnerId)}’s`
    : 'a newer';
  let theirs: string | undefined;
  if (winnerEvent && winnerEvent.action === action.action) {
    const payload = winnerEvent.payload;
    theirs = describeValue(
      action.action,
      payload !== null && typeof payload === 'object' && !Array.isArray(payload)
        ? payload
        : undefined,
    );
  } else if (action.action === 'budget_set') {
    const budget = view.client.confirmedState.budget;
    if (typeof budget === 'number') theirs = euros(budget);
  }
  if (action.action === 'activity_added' && typeof action.payload.name === 'string') {
    const by = who === 'a newer' ? 'someone' : who.replace(/’s$/, '');
    return `Your activity “${action.payload.name}” was removed by ${by} before it arrived.`;
  }
  return `Your ${what}${mine ? ` to ${mine}` : ''} was replaced by ${who} ${theirs ?? 'change'}.`;
}

function showToast(message: string, testId: string): void {
  const text = h('p', {}, message);
  const close = h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Dismiss' });
  close.textContent = '×';
  const icon = h('span', { class: 'toast-icon', 'aria-hidden': 'true' }, '!');
  const toast = h(
    'div',
    { class: 'toast', role: 'alert', 'data-testid': testId },
    icon,
    text,
    close,
  );
  const remove = () => toast.remove();
  close.addEventListener('click', remove);
  setTimeout(remove, 10_000);
  const toasts = $('toasts');
  toasts.append(toast);
  while (toasts.children.length > 3) toasts.firstElementChild?.remove();
}

// ---------------------------------------------------------------------------
// Time travel: the room as of an earlier seq, read-only (GET state?at=seq).

function formatTime(ms: number | undefined): string {
  if (ms === undefined) return '';
  return new Date(ms).toLocaleTimeString('en-GB', {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

function setupTimeTravel(view: View, renderLive: () => void): { sync: () => void } {
  const slider = $<HTMLInputElement>('time-slider');
  const label = $('time-label');
  const banner = $('travel-banner');
  let timer: ReturnType<typeof setTimeout> | undefined;
  let request = 0;

  let synced = -1;
  const sync = () => {
    const seq = view.client.seq;
    if (seq === synced && view.travelSeq !== undefined) return;
    const max = String(Math.max(1, seq));
    if (slider.max !== max) slider.max = max;
    slider.disabled = seq < 2;
    if (view.travelSeq === undefined && (seq !== synced || slider.value !== max)) {
      slider.value = max;
      setText(label, seq ? `Live · change ${seq}` : 'Live');
    }
    synced = seq;
  };

  const backToLive = () => {
    clearTimeout(timer);
    request++;
    view.travelSeq = undefined;
    workspace.disabled = false;
    banner.hidden = true;
    app.classList.remove('traveling');
    sync();
    renderLive();
  };

  slider.addEventListener('input', () => {
    const seq = Number(slider.value);
    if (seq >= view.client.seq) {
      backToLive();
      return;
    }
    view.travelSeq = seq;
    workspace.disabled = true;
    banner.hidden = false;
    app.classList.add('traveling');
    const when = formatTime(view.times.get(seq));
    const text = `change ${seq} of ${view.client.seq}${when ? ` (${when})` : ''}`;
    setText(label, text);
    setText($('travel-label'), text);
    clearTimeout(timer);
    const mine = ++request;
    timer = setTimeout(async () => {
      try {
        const past = await view.client.stateAt(seq);
        if (mine !== request) return;
        const trip = readTrip(past.state);
        renderTrip(view, trip, trip);
        app.dataset.travelSeq = String(past.seq);
      } catch (error) {
        if (mine !== request) return;
        setText($('travel-label'), `change ${seq} — not available offline`);
        console.warn('time travel:', error);
      }
    }, 150);
  });
  $('back-to-live').addEventListener('click', backToLive);
  return { sync };
}

// ---------------------------------------------------------------------------
// Wiring

/**
 * This participant's presence: what they are working on and, during a budget
 * drag or while typing it, the value under their hand. Presence is ephemeral
 * (never stored): others follow a drag live while the room only records where
 * it ended (the coalescer sends one action when the drag pauses). Sent at most
 * every 100 ms, the latest state last.
 */
function presencePublisher(
  client: RoomClient,
): (update: { focus?: string | null; budget?: number | null }) => void {
  let focus: string | null = null;
  let budget: number | null = null;
  let sentAt = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const send = () => {
    timer = undefined;
    sentAt = performance.now();
    client.setPresence(budget === null ? { focus } : { focus, budget });
  };
  return (update) => {
    if (update.focus !== undefined) focus = update.focus;
    if (update.budget !== undefined) budget = update.budget;
    if (timer !== undefined) return;
    const wait = 100 - (performance.now() - sentAt);
    if (wait <= 0) send();
    else timer = setTimeout(send, wait);
  };
}

function setupEditing(view: View): void {
  const { client } = view;
  const publish = presencePublisher(client);
  const title = $<HTMLInputElement>('title-input');
  title.addEventListener('input', () =>
    client.submit('title_set', { title: title.value.trim() }, { coalesceKey: 'title' }),
  );

  const from = $<HTMLInputElement>('date-from');
  const to = $<HTMLInputElement>('date-to');
  const setDates = () =>
    client.submit('dates_set', { from: from.value, to: to.value }, { coalesceKey: 'dates' });
  from.addEventListener('change', setDates);
  to.addEventListener('change', setDates);

  const budget = $<HTMLInputElement>('budget-input');
  budget.addEventListener('input', () => {
    const cents = parseEuros(budget.value);
    if (cents === undefined) {
      if (budget.value.trim() !== '') budget.setAttribute('aria-invalid', 'true');
      return;
    }
    budget.removeAttribute('aria-invalid');
    client.submit('budget_set', { cents }, { coalesceKey: 'budget' });
    publish({ budget: cents });
  });
  budget.addEventListener('blur', () => {
    publish({ budget: null });
    scheduleRender(view);
  });

  const range = $<HTMLInputElement>('budget-range');
  range.addEventListener('pointerdown', () => (view.draggingBudget = true));
  const release = () => {
    view.draggingBudget = false;
    scheduleRender(view);
  };
  range.addEventListener('pointerup', release);
  range.addEventListener('pointercancel', release);
  range.addEventListener('input', () => {
    const cents = Number(range.value);
    client.submit('budget_set', { cents }, { coalesceKey: 'budget' });
    publish({ budget: cents });
  });
  range.addEventListener('change', () => publish({ budget: null }));

  const activityForm = $<HTMLFormElement>('activity-form');
  const activityInput = $<HTMLInputElement>('activity-input');
  activityForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = activityInput.value.trim();
    if (!name) return;
    client.submit('activity_added', { activityId: crypto.randomUUID(), name });
    activityInput.value = '';
  });

  const packingForm = $<HTMLFormElement>('packing-form');
  const packingInput = $<HTMLInputElement>('packing-input');
  packingForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const item = packingInput.value.trim();
    if (!item) return;
    client.submit('packing_added', { item });
    packingInput.value = '';
  });

  // Presence: what each participant is looking at.
  let focus: string | null = null;
  const updateFocus = () => {
    const area =
      (document.activeElement?.closest('[data-presence]') as HTMLElement | null)?.dataset
        .presence ?? null;
    if (area !== focus) {
      focus = area;
      publish({ focus, budget: null });
    }
  };
  document.addEventListener('focusin', updateFocus);
  document.addEventListener('focusout', () => setTimeout(updateFocus, 0));
}

let renderQueued = false;
function scheduleRender(view: View): void {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    if (view.travelSeq === undefined)
      renderTrip(view, readTrip(view.client.state), readTrip(view.client.confirmedState));
    renderStatus(view);
    travel?.sync();
  });
}

let travel: { sync: () => void } | undefined;

async function main(): Promise<void> {
  registerServiceWorker();
  const params = new URLSearchParams(location.search);
  const room = roomFromUrl(params);
  setText($('room-name'), room);
  document.title = `${room} · Trip planner`;
  const me = await identify(params);

  // Dev mode: install the app's schema (skipped quietly when offline).
  await ensureSchema(location.origin);

  const client = await RoomClient.open({
    url: location.origin,
    app: APP,
    room,
    participant: me.participant,
    name: me.name,
    storage: new IndexedDbOutboxStorage({ name: 'vellum-demo' }),
  });
  window.vellumDemo = { client, participant: me.participant, room };

  const view: View = {
    client,
    me,
    names: new Map([[me.participant, me.name]]),
    events: new Map(),
    times: new Map(),
    travelSeq: undefined,
    draggingBudget: false,
  };

  client.on('change', () => scheduleRender(view));
  client.on('status', () => {
    scheduleRender(view);
    renderPeople(view, client.participants);
  });
  client.on('result', () => scheduleRender(view));
  client.on('presence', (entries) => renderPeople(view, entries));
  client.on('event', (event) => {
    view.events.set(event.id, event);
    if (view.events.size > 5000) view.events.delete(view.events.keys().next().value!);
    view.times.set(event.seq, Number(BigInt(event.serverTime) / 1_000_000n));
    if (view.times.size > 5000) view.times.delete(view.times.keys().next().value!);
    scheduleRender(view);
  });
  client.on('conflict', (conflict) => showToast(conflictMessage(view, conflict), 'conflict-toast'));
  client.on('error', (error) => {
    // One connection per participant: a second tab with the same name takes over.
    if (error.code === 'replaced') {
      showToast(
        `This trip is open as ${me.name} in another tab or window, which took over.` +
          ' Reload to continue here.',
        'replaced-toast',
      );
    }
  });

  // The browser knows when the network is gone: stop retrying until it is back.
  window.addEventListener('offline', () => client.disconnect());
  window.addEventListener('online', () => client.connect());
  if (!navigator.onLine) client.disconnect();
  // Leaving (or reloading): make the edits still inside the coalescing window durable.
  window.addEventListener('pagehide', () => void client.persist());

  setupEditing(view);
  travel = setupTimeTravel(view, () => scheduleRender(view));
  renderPeople(view, client.participants);
  scheduleRender(view);
  queueMicrotask(() => {
    app.dataset.ready = 'true';
    app.dataset.participant = me.participant;
  });
}

main().catch((error: unknown) => {
  console.error('trip planner failed to start:', error);
  showToast(
    `The planner could not start: ${error instanceof Error ? error.message : String(error)}`,
    'error-toast',
  );
});
