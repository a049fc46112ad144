/**
 * The few DOM helpers the panel renders with. Updates patch elements in place (keyed rows, text
 * set only when it changed, sections rebuilt only when their data changed), so focus, text
 * selection and open/closed state survive a result arriving while the user reads or types.
 */

/** A child of `h`: nodes and strings; `false`, `null` and `undefined` are skipped. */
export type Child = Node | string | false | null | undefined

/** Attributes of `h`: `true` sets an empty attribute, `false`/`undefined` leaves it out. */
export type Attributes = Record<string, string | number | boolean | undefined>

/** Creates an element with attributes and children. Strings become text nodes: nothing is parsed as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) setAttribute(element, name, value)
  for (const child of children.flat()) if (child !== false && child !== null && child !== undefined) element.append(child)
  return element
}

/** Sets, or removes for `false`/`undefined`, one attribute; untouched when it already has that value. */
export function setAttribute(element: Element, name: string, value: string | number | boolean | undefined): void {
  if (value === false || value === undefined) {
    if (element.hasAttribute(name)) element.removeAttribute(name)
    return
  }
  const text = value === true ? '' : String(value)
  if (element.getAttribute(name) !== text) element.setAttribute(name, text)
}

/** Sets an element's text only when it differs: rewriting equal text would drop a selection inside it. */
export function setText(element: Element, text: string): void {
  if (element.textContent !== text) element.textContent = text
}

/**
 * Rebuilds a section's children only when `signature` (a digest of the data it shows) changed
 * since the last call. The section element itself stays, and so does everything in it otherwise.
 */
export function patchSection(section: HTMLElement, signature: string, build: () => Child[]): void {
  if (section.dataset.signature === signature) return
  section.dataset.signature = signature
  section.replaceChildren(...build().filter((c): c is Node | string => c !== false && c !== null && c !== undefined))
}

/**
 * Keyed children: one element per item, found by `data-key`, created once and updated after.
 * Elements move only when out of order (moving a node blurs it), and those of vanished keys go.
 */
export function reconcile<T>(parent: Element, items: readonly T[], keyOf: (item: T) => string, create: (item: T) => HTMLElement, update: (element: HTMLElement, item: T) => void): void {
  const existing = new Map<string, HTMLElement>()
  for (const child of parent.children) if (child instanceof HTMLElement && child.dataset.key !== undefined) existing.set(child.dataset.key, child)
  const wanted = new Set<string>()
  let index = 0
  for (const item of items) {
    const key = keyOf(item)
    wanted.add(key)
    let element = existing.get(key)
    if (!element) {
      element = create(item)
      element.dataset.key = key
    }
    update(element, item)
    const at = parent.children[index]
    if (at !== element) parent.insertBefore(element, at ?? null)
    index++
  }
  for (const [key, element] of existing) if (!wanted.has(key)) element.remove()
}
