// A tiny element builder. Everything goes in as text (textContent) or as properties: no HTML
// string is ever parsed, so nothing a candidate writes (code, output, names) can become markup.

type Child = Node | string | null | undefined | false
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value)
    } else if (key === 'class') {
      el.className = String(value)
    } else if (value === true) {
      el.setAttribute(key, '')
    } else {
      el.setAttribute(key, String(value))
    }
  }
  append(el, children)
  return el
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child)
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild)
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  clear(el)
  append(el, children)
}

let idCounter = 0
export function uid(prefix: string): string {
  idCounter += 1
  return `${prefix}-${idCounter}`
}

/** Time of day for a unix-ms stamp. */
export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

export function dateTime(ms: number): string {
  return new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })
}

/** Announces a message to screen readers through the page's polite live region. */
export function announce(message: string): void {
  const region = document.getElementById('announcer')
  if (!region) return
  // Replacing the text (rather than appending) makes each message announced once.
  region.textContent = ''
  window.setTimeout(() => { region.textContent = message }, 30)
}

export function page(title: string, ...children: (Child | Child[])[]): HTMLElement {
  document.title = `${title} · Duet`
  const app = document.getElementById('app')!
  const main = h('main', { id: 'main', tabindex: '-1' }, ...children)
  replace(app, main, h('div', { id: 'announcer', class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true' }))
  return main
}
