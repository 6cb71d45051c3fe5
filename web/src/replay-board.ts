// The board in the replay: the elements of one moment drawn as SVG (rectangles, ellipses,
// diamonds, lines and arrows, freehand strokes, text), fitted to the view, with a list of the
// shapes for screen readers and tests. A small renderer of outlines, like the export's
// board.svg, rather than Excalidraw itself: the replay redraws at every step of playback, and
// needs no editing. The elements are the candidate's data: every value goes in through
// setAttribute or textContent (never markup), and colours only if they look like colours.
import { h, replace } from './dom'

const SVG = 'http://www.w3.org/2000/svg'
const MARGIN = 20

type El = Record<string, unknown>

const num = (e: El, k: string, or = 0): number => {
  const v = e[k]
  return typeof v === 'number' && Number.isFinite(v) ? v : or
}
const str = (e: El, k: string): string => (typeof e[k] === 'string' ? (e[k] as string) : '')
/** `c` if it is a `#` hex colour or a plain colour name, else `or`. */
const colour = (c: string, or: string): string =>
  /^#[0-9a-fA-F]{3,8}$/.test(c) || /^[a-zA-Z]{1,20}$/.test(c) ? c : or

const points = (e: El): [number, number][] => {
  const ps = e.points
  if (!Array.isArray(ps)) return []
  return ps.filter((p): p is [number, number] =>
    Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'number' && Number.isFinite(p[0]) && Number.isFinite(p[1]))
}

const svg = (tag: string, attrs: Record<string, string | number>): SVGElement => {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

/** One element as SVG, or null for a kind the replay does not draw. */
function draw(e: El): SVGElement | null {
  const x = num(e, 'x'), y = num(e, 'y'), w = Math.max(0, num(e, 'width')), hgt = Math.max(0, num(e, 'height'))
  const stroke = colour(str(e, 'strokeColor'), '#1e1e1e')
  const fill = colour(str(e, 'backgroundColor'), 'transparent')
  const style = {
    stroke, fill, 'stroke-width': Math.min(50, Math.max(0, num(e, 'strokeWidth', 1))),
    opacity: Math.min(100, Math.max(0, num(e, 'opacity', 100))) / 100,
    'stroke-linecap': 'round', 'stroke-linejoin': 'round',
  }
  const cx = x + w / 2, cy = y + hgt / 2
  const angle = num(e, 'angle')
  let el: SVGElement
  switch (str(e, 'type')) {
    case 'rectangle': el = svg('rect', { x, y, width: w, height: hgt, ...style }); break
    case 'ellipse': el = svg('ellipse', { cx, cy, rx: w / 2, ry: hgt / 2, ...style }); break
    case 'diamond': el = svg('polygon', { points: `${cx},${y} ${x + w},${cy} ${cx},${y + hgt} ${x},${cy}`, ...style }); break
    case 'line': case 'arrow': case 'freedraw': {
      const ps = points(e)
      if (ps.length < 2) return null
      const g = svg('g', {})
      g.append(svg('path', { d: 'M' + ps.map(([px, py]) => `${x + px},${y + py}`).join(' L'), ...style, fill: 'none' }))
      if (str(e, 'type') === 'arrow') {
        const [ax, ay] = ps[ps.length - 2], [bx, by] = ps[ps.length - 1]
        const len = Math.hypot(bx - ax, by - ay)
        if (len > 0) {
          const ux = (bx - ax) / len, uy = (by - ay) / len, size = Math.min(len / 2, 15)
          const wing = (side: number) => {
            const t = 0.5 * side
            return [x + bx - size * (ux * Math.cos(t) - uy * Math.sin(t)), y + by - size * (ux * Math.sin(t) + uy * Math.cos(t))]
          }
          const [l, r] = [wing(1), wing(-1)]
          g.append(svg('path', { d: `M${l[0]},${l[1]} L${x + bx},${y + by} L${r[0]},${r[1]}`, ...style, fill: 'none' }))
        }
      }
      el = g
      break
    }
    case 'text': {
      const size = Math.min(500, Math.max(1, num(e, 'fontSize', 20)))
      el = svg('text', { x, y, 'font-size': size, 'font-family': 'sans-serif', fill: stroke, 'dominant-baseline': 'text-before-edge' })
      str(e, 'text').split('\n').forEach((line, i) => {
        const span = svg('tspan', { x, dy: i === 0 ? 0 : '1.25em' })
        span.textContent = line // text, never markup
        el.append(span)
      })
      break
    }
    default: return null
  }
  if (angle) el.setAttribute('transform', `rotate(${(angle * 180) / Math.PI} ${cx} ${cy})`)
  return el
}

export interface BoardView {
  element: HTMLElement
  /** Shows the board's elements of one moment (as the snapshot serves them). */
  show(elements: El[]): void
}

export function createBoardView(): BoardView {
  const canvas = svg('svg', { class: 'replay-board-svg', role: 'img', 'aria-label': 'The board at the chosen moment' }) as SVGSVGElement
  const count = h('p', { class: 'small muted', role: 'status', 'data-testid': 'replay-board-count' }, 'The board is empty.')
  const summary = h('ul', { class: 'sr-only', 'aria-label': 'Shapes on the board', 'data-testid': 'replay-board-summary' })
  const element = h('section', { class: 'panel replay-board', 'aria-labelledby': 'rb-h', 'data-testid': 'replay-board' },
    h('h2', { id: 'rb-h' }, 'Board'), count, canvas, summary)
  const show = (all: El[]) => {
    const elements = all.filter((e) => e.isDeleted !== true)
      .sort((a, b) => (str(a, 'index') + '\u0000' + str(a, 'id')).localeCompare(str(b, 'index') + '\u0000' + str(b, 'id')))
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity
    const grow = (x: number, y: number) => { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y) }
    const drawn: SVGElement[] = []
    for (const e of elements) {
      const el = draw(e)
      if (!el) continue
      drawn.push(el)
      const x = num(e, 'x'), y = num(e, 'y')
      grow(x, y)
      grow(x + Math.max(0, num(e, 'width')), y + Math.max(0, num(e, 'height')))
      for (const [px, py] of points(e)) grow(x + px, y + py)
    }
    if (!drawn.length) { x0 = y0 = 0; x1 = y1 = 100 }
    canvas.setAttribute('viewBox', `${x0 - MARGIN} ${y0 - MARGIN} ${x1 - x0 + 2 * MARGIN} ${y1 - y0 + 2 * MARGIN}`)
    canvas.replaceChildren(...drawn)
    count.textContent = elements.length === 0 ? 'The board is empty.' : `${elements.length} shape${elements.length === 1 ? '' : 's'} on the board.`
    replace(summary, elements.map((e) => h('li', {}, str(e, 'text') ? `${str(e, 'type')}: ${str(e, 'text')}` : str(e, 'type'))))
  }
  return { element, show }
}
