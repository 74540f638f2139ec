// SPDX-License-Identifier: Apache-2.0
// IndexedDbOutboxStorage: the outbox of a browser tab. One database (default
// name "vellum-outbox") with two object stores: `outbox` (OutboxRecord, key
// path action.id) and `rooms` (CachedRoom, key [app, room, participant]).
// Every method resolves when its transaction completes — not when a request
// succeeds, which may still be rolled back — and writes ask for the "strict"
// durability hint so that completion means flushed to disk.
import { VellumError, type CachedRoom, type OutboxRecord, type OutboxStorage } from '../types.js';

const DB_VERSION = 1;
const OUTBOX = 'outbox';
const ROOMS = 'rooms';

export interface IndexedDbOutboxStorageOptions {
  /** Database name; one per origin is enough (records carry app, room and participant). */
  name?: string;
  /** The IDBFactory; default globalThis.indexedDB. */
  indexedDB?: IDBFactory;
}

export class IndexedDbOutboxStorage implements OutboxStorage {
  private readonly name: string;
  private readonly factory: IDBFactory;
  private db: Promise<IDBDatabase> | undefined;

  constructor(options: IndexedDbOutboxStorageOptions = {}) {
    this.name = options.name ?? 'vellum-outbox';
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (!factory) throw new VellumError('unimplemented', 'IndexedDB is not available here');
    this.factory = factory;
  }

  async load(): Promise<OutboxRecord[]> {
    return this.run(OUTBOX, 'readonly', (store) => store.getAll()) as Promise<OutboxRecord[]>;
  }

  async put(records: OutboxRecord[]): Promise<void> {
    await this.run(OUTBOX, 'readwrite', (store) => {
      for (const record of records) store.put(record);
    });
  }

  async remove(ids: string[]): Promise<void> {
    await this.run(OUTBOX, 'readwrite', (store) => {
      for (const id of ids) store.delete(id);
    });
  }

  async loadRoom(app: string, room: string, participant: string): Promise<CachedRoom | undefined> {
    const found = await this.run(ROOMS, 'readonly', (store) => store.get([app, room, participant]));
    return found as CachedRoom | undefined;
  }

  async saveRoom(room: CachedRoom): Promise<void> {
    await this.run(ROOMS, 'readwrite', (store) => {
      store.put(room);
    });
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) (await db).close();
  }

  /**
   * Runs `body` in one transaction on `storeName` and resolves with the result
   * of the request it returns (if any) once the transaction has completed.
   */
  private async run(
    storeName: string,
    mode: IDBTransactionMode,
    body: (store: IDBObjectStore) => IDBRequest | void,
  ): Promise<unknown> {
    const db = await this.open();
    const transaction =
      mode === 'readwrite'
        ? db.transaction(storeName, mode, { durability: 'strict' })
        : db.transaction(storeName, mode);
    const request = body(transaction.objectStore(storeName));
    await transactionDone(transaction);
    return request ? request.result : undefined;
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, DB_VERSION);
      request.onupgradeneeded = () => createStores(request.result);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(storageError(request.error, 'opening the outbox database'));
      request.onblocked = () =>
        reject(new VellumError('unavailable', 'the outbox database is blocked by another tab'));
    });
    return this.db;
  }
}

function createStores(db: IDBDatabase): void {
  if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: 'action.id' });
  if (!db.objectStoreNames.contains(ROOMS)) {
    db.createObjectStore(ROOMS, { keyPath: ['app', 'room', 'participant'] });
  }
}

function transactionDone(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(storageError(transaction.error, 'an outbox transaction'));
    transaction.onabort = () => reject(storageError(transaction.error, 'an outbox transaction'));
  });
}

function storageError(error: DOMException | null, what: string): VellumError {
  return new VellumError('io_error', `${what} failed: ${error?.message ?? 'aborted'}`);
}
