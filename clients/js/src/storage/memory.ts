// SPDX-License-Identifier: Apache-2.0
// An OutboxStorage that lives only as long as the process: the default of
// RoomClient, and what tests use when durability is not the point. Values are
// copied in and out, so a caller mutating its objects cannot change what is
// "stored" (the durable storages behave the same way by serializing).
import type { CachedRoom, OutboxRecord, OutboxStorage } from '../types.js';

export function roomKey(app: string, room: string, participant: string): string {
  return JSON.stringify([app, room, participant]);
}

export class MemoryOutboxStorage implements OutboxStorage {
  private readonly records = new Map<string, OutboxRecord>();
  private readonly rooms = new Map<string, CachedRoom>();

  async load(): Promise<OutboxRecord[]> {
    return [...this.records.values()].map((record) => structuredClone(record));
  }

  async put(records: OutboxRecord[]): Promise<void> {
    for (const record of records) this.records.set(record.action.id, structuredClone(record));
  }

  async remove(ids: string[]): Promise<void> {
    for (const id of ids) this.records.delete(id);
  }

  async loadRoom(app: string, room: string, participant: string): Promise<CachedRoom | undefined> {
    const cached = this.rooms.get(roomKey(app, room, participant));
    return cached && structuredClone(cached);
  }

  async saveRoom(room: CachedRoom): Promise<void> {
    this.rooms.set(roomKey(room.app, room.room, room.participant), structuredClone(room));
  }

  async close(): Promise<void> {}
}
