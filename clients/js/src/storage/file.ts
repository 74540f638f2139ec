// SPDX-License-Identifier: Apache-2.0
// FileOutboxStorage: the outbox of a Node process, in one file that survives
// crashes (docs/formats/js-outbox.md). Every change is one frame appended to
// the file and fdatasync'ed before its promise resolves, so an acknowledged
// put is on disk. A crash can only tear the last frame; on load, frames are
// read up to the first one that is incomplete or fails its CRC, and the file
// is rewritten (temp file, fsync, rename, fsync of the directory) without it.
// The same rewrite compacts the log once it has grown well past its content.
//
// Node only (node:fs): import it from this file, not from the package index,
// so that browser bundles never see it. One process per file at a time.
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { VellumError, type CachedRoom, type OutboxRecord, type OutboxStorage } from '../types.js';
import { crc32 } from './crc32.js';
import { roomKey } from './memory.js';

/** The first 8 bytes of every outbox file (format version 1). */
export const FILE_MAGIC = 'VLOUTBX1';
const MAGIC_BYTES = new TextEncoder().encode(FILE_MAGIC);
/** Frame header: u32 LE payload length, u32 LE CRC-32 of the payload. */
const FRAME_HEADER_BYTES = 8;
/** No legitimate frame is larger: a bigger length is a torn or garbage tail. */
export const FRAME_PAYLOAD_MAX = 64 * 1024 * 1024;
const COMPACT_AT_BYTES_MIN = 1024 * 1024;

/** One frame's payload: a change to the outbox or to the room cache. */
type Change =
  | { op: 'put'; records: OutboxRecord[] }
  | { op: 'remove'; ids: string[] }
  | { op: 'room'; room: CachedRoom };

export interface FileOutboxStorageOptions {
  /** Rewrite the file once it exceeds this many bytes (and twice its compacted size). */
  compactAtBytes?: number;
}

/** What load found: how many bytes of torn or garbage tail were dropped. */
export interface FileRecovery {
  frames: number;
  droppedBytes: number;
}

export class FileOutboxStorage implements OutboxStorage {
  private readonly records = new Map<string, OutboxRecord>();
  private readonly rooms = new Map<string, CachedRoom>();
  private handle: FileHandle | undefined;
  private fileBytes = 0;
  private compactAtBytes: number;
  private readonly compactAtBytesMin: number;
  /** Every operation runs after the previous one: frames never interleave. */
  private queue: Promise<unknown> = Promise.resolve();
  private opened: Promise<void> | undefined;
  private closed = false;
  /** A failed append may have left part of a frame behind. */
  private damaged = false;
  /** Filled by the first load (tests and diagnostics). */
  recovery: FileRecovery = { frames: 0, droppedBytes: 0 };

  constructor(
    readonly file: string,
    options: FileOutboxStorageOptions = {},
  ) {
    this.compactAtBytesMin = options.compactAtBytes ?? COMPACT_AT_BYTES_MIN;
    this.compactAtBytes = this.compactAtBytesMin;
  }

  load(): Promise<OutboxRecord[]> {
    return this.serialized(async () =>
      [...this.records.values()].map((record) => structuredClone(record)),
    );
  }

  put(records: OutboxRecord[]): Promise<void> {
    return this.serialized(async () => {
      await this.append({ op: 'put', records });
      for (const record of records) this.records.set(record.action.id, structuredClone(record));
    });
  }

  remove(ids: string[]): Promise<void> {
    return this.serialized(async () => {
      const present = ids.filter((id) => this.records.has(id));
      if (present.length === 0) return;
      await this.append({ op: 'remove', ids: present });
      for (const id of present) this.records.delete(id);
    });
  }

  loadRoom(app: string, room: string, participant: string): Promise<CachedRoom | undefined> {
    return this.serialized(async () => {
      const cached = this.rooms.get(roomKey(app, room, participant));
      return cached && structuredClone(cached);
    });
  }

  saveRoom(room: CachedRoom): Promise<void> {
    return this.serialized(async () => {
      await this.append({ op: 'room', room });
      this.rooms.set(roomKey(room.app, room.room, room.participant), structuredClone(room));
    });
  }

  close(): Promise<void> {
    return this.serialized(async () => {
      this.closed = true;
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  /** Runs `work` after every earlier operation, opening the file first. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = async () => {
      if (this.closed) throw new VellumError('failed_precondition', 'the outbox file is closed');
      this.opened ??= this.openFile();
      await this.opened;
      return work();
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async openFile(): Promise<void> {
    const bytes = await readExisting(this.file);
    const loaded = bytes && bytes.length >= MAGIC_BYTES.length ? this.replay(bytes) : undefined;
    // A missing file, one torn before its header was complete, a torn tail
    // and a bloated log are all answered the same way: a fresh, compact file.
    if (!loaded || loaded.dropped > 0 || loaded.length > this.compactAtBytes) {
      await this.rewrite();
    } else {
      this.fileBytes = loaded.length;
      this.handle = await open(this.file, 'a');
    }
  }

  /** Applies every intact frame of `bytes`; returns how far they reach. */
  private replay(bytes: Uint8Array): { length: number; dropped: number } {
    if (!startsWithMagic(bytes)) {
      throw new VellumError('data_loss', `${this.file} is not a Vellum outbox file`);
    }
    let offset = MAGIC_BYTES.length;
    let frames = 0;
    for (;;) {
      const frame = readFrame(bytes, offset);
      if (!frame) break;
      this.applyChange(frame.change);
      offset = frame.end;
      frames++;
    }
    this.recovery = { frames, droppedBytes: bytes.length - offset };
    return { length: offset, dropped: bytes.length - offset };
  }

  private applyChange(change: Change): void {
    if (change.op === 'put') {
      for (const record of change.records) this.records.set(record.action.id, record);
    } else if (change.op === 'remove') {
      for (const id of change.ids) this.records.delete(id);
    } else {
      const { app, room, participant } = change.room;
      this.rooms.set(roomKey(app, room, participant), change.room);
    }
  }

  private async append(change: Change): Promise<void> {
    if (this.damaged || this.fileBytes > this.compactAtBytes) await this.rewrite();
    const frame = encodeFrame(change);
    try {
      await writeAll(this.handle!, frame);
      await this.handle!.datasync();
    } catch (error) {
      // Part of the frame may be in the file: frames appended after it would
      // be unreadable, so the next change first rewrites the file.
      this.damaged = true;
      throw error;
    }
    this.fileBytes += frame.length;
  }

  /** Writes the live content to a temporary file and renames it over the log. */
  private async rewrite(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    const frames = [MAGIC_BYTES];
    if (this.records.size > 0) {
      frames.push(encodeFrame({ op: 'put', records: [...this.records.values()] }));
    }
    for (const room of this.rooms.values()) frames.push(encodeFrame({ op: 'room', room }));
    const content = concat(frames);
    const temporary = `${this.file}.tmp`;
    await writeDurably(temporary, content);
    await rename(temporary, this.file);
    await syncDirectory(path.dirname(this.file));
    this.fileBytes = content.length;
    this.damaged = false;
    this.compactAtBytes = Math.max(this.compactAtBytesMin, 2 * content.length);
    this.handle = await open(this.file, 'a');
  }
}

async function readExisting(file: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function startsWithMagic(bytes: Uint8Array): boolean {
  return MAGIC_BYTES.every((byte, i) => bytes[i] === byte);
}

/** Encodes one frame: length, CRC-32, JSON payload. */
export function encodeFrame(change: unknown): Uint8Array<ArrayBuffer> {
  const payload = new TextEncoder().encode(JSON.stringify(change));
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint32(4, crc32(payload), true);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** The intact frame at `offset`, or undefined where the intact frames end. */
function readFrame(bytes: Uint8Array, offset: number): { change: Change; end: number } | undefined {
  if (bytes.length - offset < FRAME_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES);
  const length = view.getUint32(0, true);
  const start = offset + FRAME_HEADER_BYTES;
  if (length > FRAME_PAYLOAD_MAX || length > bytes.length - start) return undefined;
  const payload = bytes.subarray(start, start + length);
  if (crc32(payload) !== view.getUint32(4, true)) return undefined;
  const change = parseChange(payload);
  return change && { change, end: start + length };
}

/** A CRC can collide with garbage; the payload must also be a well-formed change. */
function parseChange(payload: Uint8Array): Change | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return undefined;
  }
  const change = value as Change;
  if (typeof value !== 'object' || value === null) return undefined;
  if (change.op === 'put' && Array.isArray(change.records)) {
    return change.records.every(isRecord) ? change : undefined;
  }
  if (change.op === 'remove' && Array.isArray(change.ids)) {
    return change.ids.every((id) => typeof id === 'string') ? change : undefined;
  }
  if (change.op === 'room' && typeof change.room === 'object' && change.room !== null) {
    return typeof change.room.app === 'string' ? change : undefined;
  }
  return undefined;
}

function isRecord(record: OutboxRecord): boolean {
  return (
    typeof record === 'object' &&
    record !== null &&
    typeof record.app === 'string' &&
    typeof record.order === 'number' &&
    typeof record.action?.id === 'string'
  );
}

async function writeAll(handle: FileHandle, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
    written += bytesWritten;
  }
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function writeDurably(file: string, content: Uint8Array<ArrayBuffer>): Promise<void> {
  await rm(file, { force: true });
  const handle = await open(file, 'wx');
  try {
    await writeAll(handle, content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename durable (POSIX); platforms that cannot open a directory skip it. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error;
  } finally {
    await handle?.close();
  }
}
