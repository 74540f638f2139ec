// SPDX-License-Identifier: Apache-2.0
// What RoomClient and EventStoreClient share: URLs, JSON over HTTP with the
// server's errors turned into VellumErrors, the WebSocket constructor (the
// browser's, else the `ws` package, loaded only when needed so that browser
// bundles never contain it), ids, and reconnect backoff.
import { VellumError, type Json, type WebSocketLike } from './types.js';

export const HTTP_TIMEOUT_MS = 10_000;

export type Query = Record<string, string | number | boolean | undefined>;

/** `base` (http(s)://host:port) + `path` + the defined query parameters. */
export function httpUrl(base: string, path: string, query: Query = {}): string {
  const url = new URL(base);
  url.pathname = url.pathname.replace(/\/$/, '') + path;
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.toString();
}

/** The same with ws(s):// for WebSocket endpoints. */
export function wsUrl(base: string, path: string, query: Query = {}): string {
  return httpUrl(base, path, query).replace(/^http/, 'ws');
}

export interface RequestOptions {
  method?: string;
  body?: Json;
  bearer?: string;
  /** Extra request headers (a room token goes in X-Room-Token, not Authorization). */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Sends a JSON request; answers the parsed body, or throws the server's error. */
export async function requestJson(url: string, options: RequestOptions = {}): Promise<unknown> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.bearer) headers['authorization'] = `Bearer ${options.bearer}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? HTTP_TIMEOUT_MS),
    });
  } catch (error) {
    throw new VellumError('unavailable', `${url}: ${(error as Error).message}`);
  }
  const text = await response.text();
  const body = parseBody(text);
  if (!response.ok) throw errorFromResponse(response.status, body, text);
  return body;
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The store answers {"error": code, "message", ...}, the rooms API
 * {"error": {"code", "message"}}: both become VellumError(code, message, status).
 */
export function errorFromResponse(status: number, body: unknown, text: string): VellumError {
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const error = record['error'];
  if (typeof error === 'object' && error !== null) {
    const nested = error as { code?: unknown; message?: unknown };
    return new VellumError(String(nested.code ?? status), String(nested.message ?? ''), status);
  }
  const code = typeof error === 'string' ? error : `http_${status}`;
  const details = Object.entries(record)
    .filter(([key]) => key !== 'error' && key !== 'message')
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  const message = typeof record['message'] === 'string' ? record['message'] : text.slice(0, 200);
  return new VellumError(code, [message, ...details].filter(Boolean).join('; '), status);
}

/** The given constructor, the global WebSocket, or the `ws` package (Node). */
export async function resolveWebSocket(given?: WebSocketLike): Promise<WebSocketLike> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
  if (global) return global;
  const module = (await import('ws')) as unknown as { WebSocket: WebSocketLike };
  return module.WebSocket;
}

/** A text frame's data as a string (browsers give strings, `ws` may give bytes). */
export function frameText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}

/** A random UUID (v4): the id of an action, stable across retries. */
export function randomId(): string {
  const crypto = globalThis.crypto;
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;  // version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;  // RFC 4122 variant
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)}`;
}

/** Exponential backoff with jitter: delays in [d/2, d], d doubling up to maxMs. */
export class Backoff {
  private attempts = 0;

  constructor(
    readonly minMs: number,
    readonly maxMs: number,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempts = 0;
  }
}

/** UTF-8 length of a frame, for the client's byte counters. */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}
