// SPDX-License-Identifier: Apache-2.0
// The outbox: the ordered, durable queue of one participant's actions in one
// room that the server has not answered yet. An action enters it (durably,
// through an OutboxStorage) before it is sent for the first time, and leaves
// it only once its final result is known, so an action made offline survives
// a reload or a crash and is sent again — with the same id, which the server
// answers with the original result instead of applying it twice.
import type { OutboxRecord, OutboxStorage, PendingAction } from './types.js';

/** The server takes at most this many events per submit (docs/api/rooms.md "Limits"). */
export const SUBMIT_EVENTS_MAX = 100;

export interface OutboxKey {
  app: string;
  room: string;
  participant: string;
}

export class Outbox {
  /** Durable actions by id, in the order they were added (Map keeps insertion order). */
  private readonly durable = new Map<string, OutboxRecord>();
  private nextOrder: number;
  /** Storage writes run one after another, in the order they were asked for. */
  private writes: Promise<unknown> = Promise.resolve();
  private emptyWaiters: Array<() => void> = [];
  /** Ids whose add is being written, and those of them removed meanwhile. */
  private readonly adding = new Set<string>();
  private readonly cancelled = new Set<string>();

  private constructor(
    private readonly storage: OutboxStorage,
    readonly key: OutboxKey,
    records: OutboxRecord[],
  ) {
    for (const record of records) this.durable.set(record.action.id, record);
    this.nextOrder = records.reduce((max, record) => Math.max(max, record.order + 1), 0);
  }

  /** Loads this key's records from `storage`, oldest first. */
  static async open(storage: OutboxStorage, key: OutboxKey): Promise<Outbox> {
    const all = await storage.load();
    const mine = all.filter((record) =>
      record.app === key.app && record.room === key.room &&
      record.participant === key.participant);
    mine.sort((a, b) => a.order - b.order);
    return new Outbox(storage, key, mine);
  }

  get size(): number {
    return this.durable.size;
  }

  /** The durable actions, oldest first. */
  get actions(): PendingAction[] {
    return [...this.durable.values()].map((record) => record.action);
  }

  has(id: string): boolean {
    return this.durable.has(id);
  }

  get(id: string): PendingAction | undefined {
    return this.durable.get(id)?.action;
  }

  /**
   * Stores the actions durably, in this order after everything added before;
   * they are visible in `actions` once the promise resolves (not before: what
   * is sent must already be durable).
   */
  add(actions: PendingAction[]): Promise<void> {
    const records = actions.map((action) => ({ ...this.key, action, order: this.nextOrder++ }));
    for (const record of records) this.adding.add(record.action.id);
    return this.write(async () => {
      try {
        if (records.length > 0) await this.storage.put(records);
      } finally {
        for (const record of records) this.adding.delete(record.action.id);
      }
      const cancelled = records.filter((record) => this.cancelled.delete(record.action.id));
      for (const record of records) {
        if (!cancelled.includes(record)) this.durable.set(record.action.id, record);
      }
      if (cancelled.length > 0) await this.storage.remove(cancelled.map((r) => r.action.id));
    });
  }

  /**
   * Forgets actions whose final result is known. They leave `actions` at
   * once (so a second answer for the same id finds nothing); the storage
   * write follows in order.
   */
  remove(ids: string[]): Promise<void> {
    for (const id of ids) if (this.adding.has(id)) this.cancelled.add(id);
    const present = ids.filter((id) => this.durable.delete(id));
    if (this.durable.size === 0) this.wakeEmptyWaiters();
    if (present.length === 0) return this.writes.then(() => undefined);
    return this.write(() => this.storage.remove(present));
  }

  /** The durable actions in submit-sized batches, oldest first. */
  batches(max = SUBMIT_EVENTS_MAX, actions = this.actions): PendingAction[][] {
    const batches: PendingAction[][] = [];
    for (let i = 0; i < actions.length; i += max) batches.push(actions.slice(i, i + max));
    return batches;
  }

  /** Resolves once no action is left (now, if none is). */
  whenEmpty(): Promise<void> {
    if (this.durable.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Resolves after every storage write asked for so far. */
  settled(): Promise<void> {
    return this.writes.then(() => undefined);
  }

  private write(work: () => Promise<void>): Promise<void> {
    const result = this.writes.then(work);
    this.writes = result.catch(() => undefined);
    return result;
  }

  private wakeEmptyWaiters(): void {
    const waiters = this.emptyWaiters;
    this.emptyWaiters = [];
    for (const wake of waiters) wake();
  }
}
