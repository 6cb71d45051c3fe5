// The room's project: the file tree (create, rename, delete; folders shown as folders), the
// tabs of open files, and the shared editor showing the chosen file. Where each other person's
// editor is shows as a marker (their colour and name) on the file in the tree and on its tab;
// this page announces its own file as `file` in its awareness state. The rules a name must
// follow are checked here first (files.ts, in the server's words); a change the server still
// refuses (it closes the editor socket with 1007) is shown here too.
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import type { WebsocketProvider } from 'y-websocket'
import { EditorView } from '@codemirror/view'
import { h, replace, announce } from './dom'
import { createEditor, type SharedEditor } from './editor'
import { FILES, MAIN_FILE, createFile, deleteFile, fileTree, listFiles, renameFile, type TreeNode } from './files'
import { OpenFiles, whereEveryoneIs, type Here } from './room-state-files'
import { INVALID_PAYLOAD } from './room-state'

export interface ProjectOptions {
  doc: Y.Doc
  awareness: Awareness
  provider: WebsocketProvider
  readOnly: boolean
  /** Why the files cannot be changed while read-only: New file's title then. */
  readOnlyTitle?: string
  onRun?: () => void
}

export interface Project {
  /** The tree, the tabs and the editor, to place in the page. */
  element: HTMLElement
  /** The editor's frame (presence draws its off-screen cursor note in it). */
  editorHost: HTMLElement
  editor: SharedEditor
  /** The file shown now. */
  current(): { path: string; ytext: Y.Text }
  /** Opens the listed file `path` (follow mode): whether it is listed. */
  open(path: string): boolean
  /** Opens the listed file `path` with the cursor at the start of `line` (a style finding's place). */
  reveal(path: string, line: number): void
  /** Called after the editor shows another file. */
  onSwitch(listener: () => void): void
  /** Where everyone else's editor is, by path (the markers' source). */
  whereEveryoneIs(): Map<string, Here[]>
  setReadOnly(readOnly: boolean): void
}

export function mountProject(o: ProjectOptions): Project {
  const { doc, awareness } = o
  let readOnly = o.readOnly
  let listing = listFiles(doc)
  const files = new OpenFiles(listing, MAIN_FILE)
  const collapsed = new Set<string>()
  const switchListeners: (() => void)[] = []

  // --- the frame
  const note = h('p', { class: 'files-note', role: 'alert', 'data-testid': 'files-note', hidden: true })
  const formHost = h('div', { class: 'files-form' })
  const newTitle = 'A new file (a path like shop/cart.py makes the folder too)'
  const lockedTitle = o.readOnlyTitle ?? 'The files cannot be changed now.'
  const newBtn = h('button', { type: 'button', class: 'small', 'data-testid': 'new-file', disabled: readOnly, title: readOnly ? lockedTitle : newTitle }, 'New file')
  const treeEl = h('ul', { class: 'file-tree', 'data-testid': 'file-tree' })
  const nav = h('nav', { class: 'files', 'aria-label': 'Files' },
    h('div', { class: 'files-head' }, h('h2', {}, 'Files'), newBtn), formHost, note, treeEl)
  const tabsEl = h('div', { class: 'file-tabs', role: 'group', 'aria-label': 'Open files', 'data-testid': 'file-tabs' })
  const editorHost = h('div', { class: 'editor', 'data-testid': 'editor' })
  const element = h('div', { class: 'project' }, nav, h('div', { class: 'files-main' }, tabsEl, editorHost))

  const editor = createEditor({
    parent: editorHost, path: MAIN_FILE, ytext: doc.getText(MAIN_FILE), awareness, readOnly, onRun: o.onRun,
    label: (path) => path === MAIN_FILE ? 'main.py, the shared program' : `${path}, a shared file`,
  })

  /** A refusal (`warn`), or news about the files (`info`), under the header; null clears it. */
  const say = (text: string | null, tone: 'warn' | 'info' = 'warn') => {
    note.hidden = text === null
    note.textContent = text ?? ''
    note.classList.toggle('info', tone === 'info')
    if (text) announce(text)
  }

  // This page's file, for everyone else's markers and follow mode. The cursor is cleared with
  // it: it pointed into the file left behind until the editor sets it again.
  const announceFile = (path: string) => {
    awareness.setLocalState({ ...(awareness.getLocalState() ?? {}), file: path, cursor: null })
  }

  const show = (target: { path: string; root: string }) => {
    editor.show(target.path, doc.getText(target.root))
    announceFile(target.path)
    render()
    for (const l of switchListeners) l()
  }

  // --- the forms: new file, rename, delete (one at a time, under the header)
  const closeForm = () => replace(formHost)
  const pathForm = (label: string, value: string, submit: string, act: (path: string) => string | null) => {
    const input = h('input', { type: 'text', value, 'aria-label': label, 'data-testid': 'file-path', spellcheck: 'false', autocomplete: 'off' })
    const form = h('form', { class: 'file-form' },
      h('label', {}, label, input),
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'small primary' }, submit),
        h('button', { type: 'button', class: 'small', onclick: () => { closeForm(); say(null) } }, 'Cancel')))
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const refused = readOnly ? 'The files cannot be changed now.' : act(input.value.trim())
      if (refused) { say(refused); input.focus(); return }
      say(null)
      closeForm()
    })
    replace(formHost, form)
    input.focus()
    input.setSelectionRange(value.length, value.length)
  }
  const createForm = (folder: string) => pathForm('New file path', folder ? `${folder}/` : '', 'Create', (path) => {
    const refused = createFile(doc, path)
    if (refused) return refused
    refresh()
    const opened = files.open(path)
    if (opened) show(opened)
    editor.view.focus()
    announce(`Created ${path}`)
    return null
  })
  const renameForm = (from: string) => pathForm(`Rename ${from} to`, from, 'Rename', (to) => {
    const refused = renameFile(doc, from, to)
    if (!refused && to !== from) announce(`Renamed ${from} to ${to}`)
    return refused
  })
  const deleteForm = (path: string) => {
    const form = h('form', { class: 'file-form' },
      h('p', {}, `Delete ${path} for everyone?`),
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'small danger', 'data-testid': 'confirm-delete' }, 'Delete'),
        h('button', { type: 'button', class: 'small', onclick: closeForm }, 'Cancel')))
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const refused = readOnly ? 'The files cannot be changed now.' : deleteFile(doc, path)
      say(refused)
      closeForm()
      if (!refused) announce(`Deleted ${path}`)
    })
    replace(formHost, form)
    ;(form.querySelector('button') as HTMLButtonElement).focus()
  }
  newBtn.addEventListener('click', () => { say(null); createForm('') })

  // --- drawing the tree and the tabs
  const markers = (where: Map<string, Here[]>, path: string) => (where.get(path) ?? []).map((p) => {
    const dot = h('span', { class: 'file-marker', 'data-testid': 'file-marker', title: `${p.name} is in ${path}` }, p.name)
    dot.style.setProperty('--who', p.color)
    return dot
  })
  const renderTree = (where: Map<string, Here[]>) => {
    const active = files.active.path
    const draw = (nodes: TreeNode[]): HTMLElement[] => nodes.map((n) => {
      if (n.kind === 'folder') {
        const open = !collapsed.has(n.path)
        const toggle = h('button', { type: 'button', class: 'folder', 'aria-expanded': String(open), 'data-path': n.path, title: n.path }, `${n.name}/`)
        toggle.addEventListener('click', () => {
          if (collapsed.has(n.path)) collapsed.delete(n.path); else collapsed.add(n.path)
          render()
        })
        return h('li', { class: 'tree-folder' }, toggle, open ? h('ul', {}, draw(n.children)) : null)
      }
      const openBtn = h('button', {
        type: 'button', class: 'file', 'data-path': n.path, title: n.path,
        'aria-current': n.path === active ? 'true' : null,
      }, n.name)
      openBtn.addEventListener('click', () => { const f = files.open(n.path); if (f) show(f) })
      const actions = readOnly || n.path === MAIN_FILE ? null : h('span', { class: 'file-actions' },
        h('button', { type: 'button', class: 'small icon', 'aria-label': `Rename ${n.path}`, title: 'Rename', onclick: () => { say(null); renameForm(n.path) } }, 'Rename'),
        h('button', { type: 'button', class: 'small icon', 'aria-label': `Delete ${n.path}`, title: 'Delete', onclick: () => { say(null); deleteForm(n.path) } }, 'Delete'))
      return h('li', { class: 'tree-file', 'data-path': n.path }, openBtn, markers(where, n.path), actions)
    })
    replace(treeEl, draw(fileTree(listing.keys())))
  }
  const renderTabs = (where: Map<string, Here[]>) => {
    replace(tabsEl, files.tabList().map((t) => {
      const tab = h('button', {
        type: 'button', class: 'file-tab', 'aria-current': t.active ? 'true' : null, 'data-path': t.path, title: t.path, 'aria-label': t.path,
      }, t.path.split('/').pop() ?? t.path)
      tab.addEventListener('click', () => { const f = files.open(t.path); if (f && !t.active) show(f) })
      const close = files.tabList().length > 1
        ? h('button', { type: 'button', class: 'tab-close', 'aria-label': `Close ${t.path}`, title: 'Close' }, '×')
        : null
      close?.addEventListener('click', () => { const next = files.close(t.path); if (next) show(next); else render() })
      return h('span', { class: 'file-tab-wrap' }, tab, markers(where, t.path), close)
    }))
  }
  const render = () => {
    const where = whereEveryoneIs(awareness.getStates(), doc.clientID, listing)
    renderTree(where)
    renderTabs(where)
  }

  // --- following the document: a file created, renamed or deleted by anyone
  let listed = JSON.stringify([...listing])
  const refresh = () => {
    const next = listFiles(doc)
    const key = JSON.stringify([...next])
    if (key === listed) return
    listed = key
    listing = next
    const change = files.listingChanged(listing)
    if (change.switchTo) {
      say(`The file you had open was deleted; showing ${change.switchTo.path}.`, 'info')
      show(change.switchTo)
      return
    }
    if (change.renamed) {
      editor.renamed(files.active.path)
      announceFile(files.active.path)
    }
    render()
  }
  doc.on('update', refresh)
  doc.getMap(FILES) // defined before the first remote entry arrives
  awareness.on('change', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }) => {
    if ([...added, ...updated, ...removed].some((c) => c !== doc.clientID)) render()
  })
  o.provider.on('connection-close', (event: CloseEvent | null) => {
    if (event?.code === INVALID_PAYLOAD) say(`The server refused a change: ${event.reason || 'invalid update'}`)
  })

  announceFile(MAIN_FILE)
  render()

  return {
    element, editorHost, editor,
    current: () => ({ path: files.active.path, ytext: editor.ytext }),
    open(path: string) {
      if (path === files.active.path) return true
      const f = files.open(path)
      if (f) show(f)
      return f !== null
    },
    reveal(path: string, line: number) {
      if (path !== files.active.path) {
        const f = files.open(path)
        if (!f) { say(`"${path}" no longer exists`); return }
        show(f)
      }
      const doc = editor.view.state.doc
      const at = doc.line(Math.min(Math.max(line, 1), doc.lines)).from
      editor.view.dispatch({ selection: { anchor: at }, effects: EditorView.scrollIntoView(at, { y: 'center' }) })
      editor.view.focus()
    },
    onSwitch: (l) => switchListeners.push(l),
    whereEveryoneIs: () => whereEveryoneIs(awareness.getStates(), doc.clientID, listing),
    setReadOnly(locked: boolean) {
      readOnly = locked
      editor.setReadOnly(locked)
      newBtn.disabled = locked
      newBtn.title = locked ? lockedTitle : newTitle
      if (locked) closeForm()
      render()
    },
  }
}
