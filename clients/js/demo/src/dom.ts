// SPDX-License-Identifier: Apache-2.0
// Small DOM helpers: element lookup, element creation and a keyed list
// reconciliation that keeps existing nodes (and so focus and transitions).

export function $<T extends Element = HTMLElement>(testId: string, root: ParentNode = document): T {
  const found = root.querySelector<T>(`[data-testid="${testId}"]`);
  if (!found) throw new Error(`missing element [data-testid="${testId}"]`);
  return found;
}

type Attrs = Record<string, string | boolean | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === 'class') el.className = String(value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children);
  return el;
}

export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

const keyed = new WeakMap<Element, Map<string, HTMLElement>>();

/**
 * Makes `parent`'s children the rendering of `items`, in order: an item's
 * element is created once (by key) and updated in place afterwards.
 */
export function reconcile<T>(
  parent: HTMLElement,
  items: readonly T[],
  key: (item: T) => string,
  create: (item: T) => HTMLElement,
  update: (el: HTMLElement, item: T, index: number) => void,
): void {
  let byKey = keyed.get(parent);
  if (!byKey) {
    byKey = new Map();
    keyed.set(parent, byKey);
  }
  const wanted = new Set<string>();
  items.forEach((item, index) => {
    const k = key(item);
    wanted.add(k);
    let el = byKey.get(k);
    if (!el) {
      el = create(item);
      byKey.set(k, el);
    }
    update(el, item, index);
    const at = parent.children[index];
    if (at !== el) parent.insertBefore(el, at ?? null);
  });
  for (const [k, el] of byKey) {
    if (!wanted.has(k)) {
      el.remove();
      byKey.delete(k);
    }
  }
}
