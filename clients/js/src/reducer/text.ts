// SPDX-License-Identifier: Apache-2.0
// Strings as the C++ reducer sees them: UTF-8 bytes. JavaScript strings are UTF-16, so lengths,
// validity and order are computed here the way the C++ computes them on bytes
// (docs/api/rooms.md, "Document" and "Errors and limits").
import { VellumError } from '../types.js';

export function invalid(message: string): VellumError {
  return new VellumError('invalid_argument', message);
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * Whether `text` is valid Unicode, i.e. has a UTF-8 form. A lone surrogate (which JSON.parse
 * accepts as "\ud800") has none; the server's JSON parser refuses such text, so the reducer
 * refuses such strings rather than hash a replacement character.
 */
export function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (isHighSurrogate(unit) && isLowSurrogate(text.charCodeAt(i + 1))) {
      i++;
    } else if (isHighSurrogate(unit) || isLowSurrogate(unit)) {
      return false;
    }
  }
  return true;
}

/** The length of `text` in UTF-8 bytes (what every limit of the spec counts). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) {
      bytes += 1;
    } else if (unit < 0x800) {
      bytes += 2;
    } else if (isHighSurrogate(unit) && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else {
      bytes += 3;
    }
  }
  return bytes;
}

// UTF-8 orders strings by code point; UTF-16 units agree except that the units of a surrogate
// pair (U+10000 and up) sort below U+E000..U+FFFF. Moving the surrogates above that block
// restores code point order, so no string needs encoding to be compared.
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** Compares two strings by their UTF-8 bytes, as the C++ compares std::string: -1, 0 or 1. */
export function compareUtf8(a: string, b: string): number {
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) {
    const unitA = a.charCodeAt(i);
    const unitB = b.charCodeAt(i);
    if (unitA !== unitB) return codePointRank(unitA) < codePointRank(unitB) ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The own keys of an object in the order the C++ iterates them (std::map: by UTF-8 bytes). */
export function sortedKeys(object: object): string[] {
  return Object.keys(object).sort(compareUtf8);
}
