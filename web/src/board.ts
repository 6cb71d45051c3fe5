// The whiteboard: Excalidraw bound to the document's `board` map (element id -> the element as
// JSON, docs/API.md "The board"). This module, Excalidraw and React load only when someone
// opens the board (room.ts imports it dynamically), so the editor's first load does not grow.
//
// Both ways, as Excalidraw's own collaboration does it:
// - local -> map: after each change (at most once an animation frame), every element whose
//   `version` is above the one last written or read for it is written, in one transaction;
// - map -> local: the changed keys are parsed and merged with the scene by Excalidraw's
//   `reconcileElements` (the higher `version` wins, ties go to the lower `versionNonce`, and an
//   element being edited here stays), outside the undo history; a deleted key (the server put
//   another question's drawing on the board) removes its element. This runs in the map's
//   observer, in the task that received the update: nothing waits for a frame or a timer.
// Images, embeds and iframes never leave this page (the server refuses them: no files in the
// log); the image tool is hidden and pasted files are refused. Each person's pointer travels in
// their awareness state (`board: {x, y, tool, button}`) and shows with the name and colour the
// server stamped. Element text is drawn on the canvas and listed for screen readers as text
// (textContent), never as markup; the list changes only where an element did (one line per
// shape, kept by id), so an update to one shape does not redraw the list of 5,000.
import { createElement } from 'react'
import { createRoot } from 'react-dom/client'
import { Excalidraw, CaptureUpdateAction, FONT_FAMILY, reconcileElements, restoreElements } from '@excalidraw/excalidraw'
import type { ExcalidrawImperativeAPI, Collaborator, SocketId } from '@excalidraw/excalidraw/types'
import '@excalidraw/excalidraw/index.css'
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { h } from './dom'

/** The document's board map: duet_protocol::BOARD. */
export const BOARD = 'board'
/** duet_core::board::MAX_ELEMENT_BYTES: the server refuses a larger element. */
const MAX_ELEMENT_BYTES = 64 * 1024
/** Element types the server refuses (files, or URLs another browser would load). */
const REFUSED_TYPES = new Set(['image', 'embeddable', 'iframe'])
/** The origin of this page's own transactions on the map, so its observer skips them. */
const LOCAL = Symbol('board: this page')
const utf8 = new TextEncoder()
/** Excalidraw's font family numbers to the names its fonts are registered under. */
const FONT_NAMES = new Map<number, string>(Object.entries(FONT_FAMILY).map(([name, n]) => [n, name]))

type SceneElement = ReturnType<ExcalidrawImperativeAPI['getSceneElementsIncludingDeleted']>[number]
type Elements = readonly SceneElement[]

export interface BoardOptions {
  doc: Y.Doc
  awareness: Awareness
  /** Where the board draws itself (it fills it). */
  container: HTMLElement
  readOnly: boolean
}

export interface Board {
  setReadOnly(readOnly: boolean): void
  /** The board was hidden: this person's pointer leaves the others' boards. */
  hidden(): void
  destroy(): void
}

export function mountBoard(o: BoardOptions): Board {
  const { doc, awareness } = o
  const ymap = doc.getMap<string>(BOARD)
  /** Per element id: the version last written to or read from the map. */
  const known = new Map<string, number>()
  let api: ExcalidrawImperativeAPI | null = null
  let readOnly = o.readOnly

  const canvas = h('div', { class: 'board-canvas', 'data-testid': 'board-canvas' })
  const note = h('p', { class: 'board-note', role: 'status', 'data-testid': 'board-note' })
  const summary = h('ul', { class: 'sr-only', 'aria-label': 'Shapes on the board', 'data-testid': 'board-summary' })
  o.container.append(canvas, note, summary)

  const parse = (json: string | undefined): SceneElement | null => {
    if (typeof json !== 'string') return null
    try {
      const value: unknown = JSON.parse(json)
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
      const el = value as { id?: unknown, type?: unknown }
      return typeof el.id === 'string' && typeof el.type === 'string' ? value as SceneElement : null
    } catch {
      return null
    }
  }

  /** The summary's line of each element it lists, and the element version the line shows. */
  const lines = new Map<string, { li: HTMLElement, version: number, text: string }>()
  const renderSummary = (elements: Elements) => {
    const shown = new Set<string>()
    for (const e of elements) {
      if (e.isDeleted) continue
      shown.add(e.id)
      const line = lines.get(e.id)
      if (line?.version === e.version) continue
      const text = 'text' in e && typeof e.text === 'string' && e.text ? `${e.type}: ${e.text}` : e.type
      if (!line) {
        const li = h('li', {}, text)
        summary.append(li)
        lines.set(e.id, { li, version: e.version, text })
      } else {
        line.version = e.version
        if (line.text !== text) { line.li.textContent = text; line.text = text }
      }
    }
    for (const [id, line] of lines) {
      if (!shown.has(id)) { line.li.remove(); lines.delete(id) }
    }
  }

  // --- the map into the scene
  // Excalidraw loads the fonts of the scene it starts with, not of text that arrives later: the
  // page asks for the font of each family a received text uses (once a family), and Excalidraw
  // redraws its text when the font has loaded (its `loadingdone` listener).
  const fontsAsked = new Set<number>()
  const askFonts = (elements: Elements) => {
    for (const e of elements) {
      if (e.type !== 'text' || e.isDeleted || fontsAsked.has(e.fontFamily)) continue
      const name = FONT_NAMES.get(e.fontFamily)
      if (!name) continue
      fontsAsked.add(e.fontFamily)
      document.fonts.load(`20px "${name}"`, e.text || undefined).catch(() => { fontsAsked.delete(e.fontFamily) })
    }
  }
  const fromMap: SceneElement[] = []
  for (const json of ymap.values()) {
    const el = parse(json)
    if (el) fromMap.push(el)
  }
  const initial = restoreElements(fromMap, null)
  for (const el of initial) known.set(el.id, el.version)
  renderSummary(initial)

  /** Merges the map's `keys` (all of them once Excalidraw is ready) into the scene. */
  const merge = (keys: Iterable<string>) => {
    const incoming: SceneElement[] = []
    const removed = new Set<string>()
    for (const key of keys) {
      const el = parse(ymap.get(key))
      if (el) {
        incoming.push(el)
        known.set(key, el.version)
      } else {
        removed.add(key)
        known.delete(key)
      }
    }
    if (!api) return // Excalidraw is not ready yet: it takes the whole map when it is
    const scene = api.getSceneElementsIncludingDeleted()
    const local = removed.size === 0 ? scene : scene.filter((e) => !removed.has(e.id))
    const restored = restoreElements(incoming, local)
    askFonts(restored)
    const elements = reconcileElements(local, restored as never, api.getAppState())
    api.updateScene({ elements, captureUpdate: CaptureUpdateAction.NEVER })
    // Restoring may bump an element's version (it marks an empty text deleted, say): what took
    // the incoming element counts as read, so it is not written back as a change of ours.
    const taken = new Map(restored.map((e) => [e.id, e]))
    for (const e of elements) {
      const mine = taken.get(e.id)
      if (mine && mine.version === e.version && mine.versionNonce === e.versionNonce) known.set(e.id, e.version)
    }
    renderSummary(elements)
  }
  const onRemote = (event: Y.YMapEvent<string>, tx: Y.Transaction) => {
    if (tx.origin !== LOCAL) merge(event.keysChanged)
  }
  ymap.observe(onRemote)

  // --- the scene into the map
  let flushing = false
  const flush = () => {
    flushing = false
    if (!api || readOnly) return
    const elements = api.getSceneElementsIncludingDeleted()
    // A text still empty (its editor just opened) waits until it has text or is deleted:
    // every other board would restore it as deleted with a bumped version and drop what the
    // author types into it next.
    const unsent = (e: Elements[number]) => e.type === 'text' && !e.isDeleted && 'text' in e && e.text === ''
    const changed = elements.filter((e) => !REFUSED_TYPES.has(e.type) && !unsent(e) && (known.get(e.id) ?? -1) < e.version)
    let tooBig = 0
    if (changed.length > 0) {
      doc.transact(() => {
        for (const e of changed) {
          const json = JSON.stringify(e)
          // A UTF-16 unit is at most 3 bytes of UTF-8: most elements need no encoding to know.
          if (json.length * 3 > MAX_ELEMENT_BYTES && utf8.encode(json).length > MAX_ELEMENT_BYTES) { tooBig += 1; continue }
          ymap.set(e.id, json)
          known.set(e.id, e.version)
        }
      }, LOCAL)
    }
    note.textContent = tooBig > 0
      ? 'A shape is too large to share (over 64 KiB): the others do not see it. Draw it in smaller pieces.'
      : note.textContent
    renderSummary(elements)
  }
  let loaded = false
  const onChange = () => {
    if (!loaded && api && !api.getAppState().isLoading) {
      // Excalidraw sets its scene from `initialData` once it has loaded, after it hands over
      // its API: that replaces whatever was merged in meanwhile (a board opened before the
      // document's sync arrived would stay empty). Its first change is after loading, so the
      // whole map is merged again here, once.
      loaded = true
      merge([...ymap.keys()])
    }
    if (flushing || readOnly) return
    flushing = true
    requestAnimationFrame(flush)
  }

  // --- pointers
  let pointerQueued: { x: number, y: number, tool: string, button: string } | null = null
  const onPointerUpdate = (p: { pointer: { x: number, y: number, tool: string }, button: string }) => {
    const first = pointerQueued === null
    pointerQueued = { x: p.pointer.x, y: p.pointer.y, tool: p.pointer.tool, button: p.button }
    if (first) {
      requestAnimationFrame(() => {
        awareness.setLocalStateField('board', pointerQueued)
        pointerQueued = null
      })
    }
  }
  const renderCollaborators = () => {
    if (!api) return
    const collaborators = new Map<SocketId, Collaborator>()
    awareness.getStates().forEach((state, clientId) => {
      if (clientId === doc.clientID) return
      const user = state.user as { name?: unknown, color?: unknown } | undefined
      const name = typeof user?.name === 'string' ? user.name : 'Someone'
      const color = typeof user?.color === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(user.color) ? user.color : '#888888'
      const p = state.board as { x?: unknown, y?: unknown, tool?: unknown, button?: unknown } | null | undefined
      const at = p && Number.isFinite(p.x) && Number.isFinite(p.y)
        ? { x: p.x as number, y: p.y as number, tool: p.tool === 'laser' ? 'laser' as const : 'pointer' as const }
        : undefined
      collaborators.set(String(clientId) as SocketId, {
        username: name,
        color: { background: color, stroke: color },
        pointer: at,
        button: p?.button === 'down' ? 'down' : 'up',
        id: String(clientId),
      })
    })
    api.updateScene({ collaborators })
  }
  awareness.on('change', renderCollaborators)

  // --- Excalidraw
  // Its main menu button has no accessible name (no title or label: axe's "button-name"); it is
  // named here whenever Excalidraw draws it anew.
  const menuNamer = new MutationObserver(() => {
    for (const button of canvas.querySelectorAll('button.main-menu-trigger:not([aria-label])')) button.setAttribute('aria-label', 'Board menu')
  })
  menuNamer.observe(canvas, { childList: true, subtree: true })
  const dark = window.matchMedia('(prefers-color-scheme: dark)')
  const root = createRoot(canvas)
  const render = () => {
    root.render(createElement(Excalidraw, {
      excalidrawAPI: (a: ExcalidrawImperativeAPI) => {
        api = a
        // What arrived between the first render and now (a board opened before the sync).
        queueMicrotask(() => { merge([...ymap.keys()]); renderCollaborators() })
      },
      initialData: { elements: initial, scrollToContent: true },
      onChange,
      onPointerUpdate,
      onPaste: (_data, event) => {
        const files = event?.clipboardData ? [...event.clipboardData.items].some((i) => i.kind === 'file') : false
        if (files) note.textContent = 'Images and files are not accepted on the board.'
        return !files
      },
      isCollaborating: true,
      viewModeEnabled: readOnly,
      theme: dark.matches ? 'dark' : 'light',
      UIOptions: {
        tools: { image: false },
        canvasActions: { loadScene: false, saveToActiveFile: false },
      },
    }))
  }
  render()
  dark.addEventListener('change', render)

  return {
    setReadOnly(value: boolean) {
      if (value === readOnly) return
      readOnly = value
      render()
    },
    hidden() {
      awareness.setLocalStateField('board', null)
    },
    destroy() {
      ymap.unobserve(onRemote)
      awareness.off('change', renderCollaborators)
      dark.removeEventListener('change', render)
      awareness.setLocalStateField('board', null)
      menuNamer.disconnect()
      root.unmount()
    },
  }
}
