// SPDX-License-Identifier: Apache-2.0
// The coalescer: rapid updates to one key (a drag, a slider) become one
// action (seed 001: 50 drag events, 1 sync operation). An action with a
// coalesceKey waits up to `windowMs` before it is released to the outbox; a
// newer action with the same key arriving meanwhile replaces it, and the
// replaced one is reported (the caller drops it from the optimistic view,
// which already shows the newest). Actions without a key are released at once.
//
// Order. Released actions keep the order in which their survivors were made:
// - a replacement moves its key behind everything made before it (it was made
//   last), but keeps the key's deadline, so a continuous drag is still sent
//   every `windowMs` instead of only when it stops;
// - when a key's deadline passes, every action queued before it is released
//   with it (early, which only means less coalescing), never after it;
// - an action without a key first releases everything waiting.
// So the server receives a participant's actions in the order they were made
// (minus the replaced ones), which is what outcomes and the user expect.
import type { PendingAction } from './types.js';

export const COALESCE_WINDOW_MS_DEFAULT = 50;

/** The timer seam: tests pass a manual clock, the default is setTimeout. */
export interface CoalescerTimers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface CoalescerOptions {
  windowMs?: number;
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
  timer: unknown;
}

export class Coalescer {
  readonly windowMs: number;
  readonly stats: CoalescerStats = { submitted: 0, coalesced: 0, released: 0 };
  /** Waiting actions by key; Map order is the order of release. */
  private readonly waiting = new Map<string, Waiting>();
  private readonly timers: CoalescerTimers;

  constructor(private readonly options: CoalescerOptions) {
    this.windowMs = options.windowMs ?? COALESCE_WINDOW_MS_DEFAULT;
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
      this.waiting.delete(key);  // re-inserted last: it was made after the others
      this.waiting.set(key, { action, timer: previous.timer });
      this.stats.coalesced++;
      this.options.replaced?.(previous.action, action);
      return;
    }
    const timer = this.timers.set(() => this.windowEnded(key), this.windowMs);
    this.waiting.set(key, { action, timer });
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
      this.timers.clear(entry.timer);
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
