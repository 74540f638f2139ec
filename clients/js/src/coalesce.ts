// SPDX-License-Identifier: Apache-2.0
// The coalescer: rapid updates to one key (a drag, a slider, typing) become
// one action (seed 001: 50 drag events, 1 sync operation). An action with a
// coalesceKey waits until its key has been quiet for `windowMs` (default 50 ms:
// a few animation frames without a new update), or at most `maxWaitMs` (default
// 1 s) after the first update it replaced; a newer action with the same key
// replaces it meanwhile, and the replaced one is reported (the caller drops it
// from the optimistic view, which already shows the newest). Actions without a
// key are released at once.
//
// Why a quiet period rather than one action per window: every action becomes a
// durable event in the room's log, kept for ever and replayed by every reader.
// The intermediate positions of a drag are not history anyone needs; the
// position the user let go of is. (Others can follow the drag live through
// presence, which is ephemeral.) The maximum wait bounds how stale the others'
// view of a long, never-pausing drag gets.
//
// Order. Released actions keep the order in which their survivors were made:
// - a replacement moves its key behind everything made before it (it was made
//   last);
// - when a key is released, every action queued before it is released with it
//   (early, which only means less coalescing), never after it;
// - an action without a key first releases everything waiting.
// So the server receives a participant's actions in the order they were made
// (minus the replaced ones), which is what outcomes and the user expect.
//
// Durability: an action waiting here is not yet in the outbox. A crash during
// a drag loses the drag's unreleased updates (at most `maxWaitMs` of one key);
// RoomClient.persist() and close() release them first.
import type { PendingAction } from './types.js';

export const COALESCE_WINDOW_MS_DEFAULT = 50;
export const COALESCE_MAX_WAIT_MS_DEFAULT = 1_000;

/** The timer seam: tests pass a manual clock, the default is setTimeout. */
export interface CoalescerTimers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface CoalescerOptions {
  /** The quiet period after a key's last update before it is released; 0 = no coalescing. */
  windowMs?: number;
  /** The longest an update waits while newer ones keep replacing it. */
  maxWaitMs?: number;
  /** Receives the actions that are ready to go, in the order they must be sent. */
  release: (actions: PendingAction[]) => void;
  /** `old` was replaced by `by` and will never be sent. */
  replaced?: (old: PendingAction, by: PendingAction) => void;
  timers?: CoalescerTimers;
}

export interface CoalescerStats {
  /** Actions handed to submit(). */
  submitted: number;
  /** Actions replaced by a newer one with the same key (never sent). */
  coalesced: number;
  /** Actions released. submitted = coalesced + released + waiting. */
  released: number;
}

const realTimers: CoalescerTimers = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Waiting {
  action: PendingAction;
  /** Fires `windowMs` after the newest update of the key. */
  quiet: unknown;
  /** Fires `maxWaitMs` after the first update of the key that is still waiting. */
  deadline: unknown;
}

export class Coalescer {
  readonly windowMs: number;
  readonly maxWaitMs: number;
  readonly stats: CoalescerStats = { submitted: 0, coalesced: 0, released: 0 };
  /** Waiting actions by key; Map order is the order of release. */
  private readonly waiting = new Map<string, Waiting>();
  private readonly timers: CoalescerTimers;

  constructor(private readonly options: CoalescerOptions) {
    this.windowMs = options.windowMs ?? COALESCE_WINDOW_MS_DEFAULT;
    this.maxWaitMs = Math.max(this.windowMs, options.maxWaitMs ?? COALESCE_MAX_WAIT_MS_DEFAULT);
    this.timers = options.timers ?? realTimers;
  }

  /** How many actions are waiting for their window to end. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  submit(action: PendingAction): void {
    this.stats.submitted++;
    const key = action.coalesceKey;
    if (key === undefined || this.windowMs <= 0) {
      this.flush();
      this.release([action]);
      return;
    }
    const previous = this.waiting.get(key);
    if (previous) {
      this.timers.clear(previous.quiet);
      this.waiting.delete(key);  // re-inserted last: it was made after the others
      this.waiting.set(key, { action, quiet: this.startQuiet(key), deadline: previous.deadline });
      this.stats.coalesced++;
      this.options.replaced?.(previous.action, action);
      return;
    }
    const deadline = this.timers.set(() => this.windowEnded(key), this.maxWaitMs);
    this.waiting.set(key, { action, quiet: this.startQuiet(key), deadline });
  }

  private startQuiet(key: string): unknown {
    return this.timers.set(() => this.windowEnded(key), this.windowMs);
  }

  /** Releases everything waiting now (going offline, closing, flush()). */
  flush(): void {
    this.releaseThrough(undefined);
  }

  /** Stops the timers and releases what is waiting (nothing is lost on close). */
  close(): void {
    this.flush();
  }

  private windowEnded(key: string): void {
    if (this.waiting.has(key)) this.releaseThrough(key);
  }

  /** Releases the waiting actions up to and including `key` (all if undefined). */
  private releaseThrough(key: string | undefined): void {
    const ready: PendingAction[] = [];
    for (const [waitingKey, entry] of this.waiting) {
      this.timers.clear(entry.quiet);
      this.timers.clear(entry.deadline);
      this.waiting.delete(waitingKey);
      ready.push(entry.action);
      if (waitingKey === key) break;
    }
    if (ready.length > 0) this.release(ready);
  }

  private release(actions: PendingAction[]): void {
    this.stats.released += actions.length;
    this.options.release(actions);
  }
}
