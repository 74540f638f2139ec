// SPDX-License-Identifier: Apache-2.0
// @vellum/client: the event store, rooms with optimistic state, an offline
// outbox and coalescing. Browser-safe: Node-only modules are not imported
// here (FileOutboxStorage: import '@vellum/client/dist/src/storage/file.js';
// the `ws` package is loaded on demand only where there is no WebSocket).
export * from './types.js';
export * from './reducer/index.js';
export { OptimisticRoom } from './optimistic.js';
export { MemoryOutboxStorage } from './storage/memory.js';
export { IndexedDbOutboxStorage, type IndexedDbOutboxStorageOptions } from './storage/indexeddb.js';
export { Outbox, SUBMIT_EVENTS_MAX, type OutboxKey } from './outbox.js';
export {
  Coalescer, COALESCE_WINDOW_MS_DEFAULT, type CoalescerOptions, type CoalescerStats,
  type CoalescerTimers,
} from './coalesce.js';
export {
  RoomClient, type RoomClientOptions, type RoomClientStats,
} from './room_client.js';
export {
  EventStoreClient, type AppendResult, type EventStoreClientOptions, type ExpectedRevision,
  type NewEvent, type ReadAllOptions, type ReadOptions, type ReadPage, type StoredEvent,
  type SubscribeOptions, type Subscription,
} from './store_client.js';
