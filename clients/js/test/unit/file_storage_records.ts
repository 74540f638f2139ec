// SPDX-License-Identifier: Apache-2.0
// The records the crash test's writer puts: deterministic in n, so the test
// can check that what it loads is exactly what was written.
import type { OutboxRecord } from '../../src/types.js';

export function writerRecord(n: number): OutboxRecord {
  return {
    app: 'trips',
    room: 'tokyo',
    participant: 'ann',
    order: n,
    action: {
      id: `action-${n}`,
      action: 'activity_added',
      // Payloads of varying size, so frames straddle write boundaries differently.
      payload: { activityId: `act-${n}`, name: 'x'.repeat((n * 37) % 500) },
      lamport: n,
      clientTime: 1_767_225_600_000 + n,
    },
  };
}
