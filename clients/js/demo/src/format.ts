// SPDX-License-Identifier: Apache-2.0
// Formatting helpers of the trip planner: euros from integer cents, initials
// and a stable colour per participant.

const whole = new Intl.NumberFormat('en-GB', {
  style: 'currency',
  currency: 'EUR',
  maximumFractionDigits: 0,
});
const fractional = new Intl.NumberFormat('en-GB', {
  style: 'currency',
  currency: 'EUR',
  minimumFractionDigits: 2,
});

/** 120000 → "€1,200"; 120050 → "€1,200.50". */
export function euros(cents: number): string {
  return cents % 100 === 0 ? whole.format(cents / 100) : fractional.format(cents / 100);
}

/** "1 200,50", "1,200.5", "€ 900" → cents; undefined when it is not an amount. */
export function parseEuros(text: string): number | undefined {
  let t = text.replace(/[€\s]/g, '');
  if (t === '') return undefined;
  // A comma followed by one or two digits at the end is a decimal comma.
  if (/,\d{1,2}$/.test(t) && !t.includes('.')) t = t.replace(',', '.');
  t = t.replace(/,/g, '');
  if (!/^\d{1,9}(\.\d{0,2})?$/.test(t)) return undefined;
  return Math.round(Number(t) * 100);
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters =
    parts.length > 1 ? [parts[0]![0], parts[parts.length - 1]![0]] : [name.trim().slice(0, 1)];
  return letters.join('').toUpperCase() || '?';
}

/** A hue derived from the participant id, so everyone sees the same colour. */
export function hueOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
