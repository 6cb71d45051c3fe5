// Presence in the room: who is connected (the header's list), each remote cursor's name label
// (shown when that person moves, then faded so it never hides the line above for long), an
// indicator when someone's cursor is off screen in the file shown (a click scrolls to it), and,
// for the interviewer, a toggle that follows the candidate's cursor as it moves, into whichever
// file the candidate's editor is on (the markers on the tree and tabs are filetree.ts's).
import * as Y from 'yjs'
import { EditorView } from '@codemirror/view'
import type { Awareness } from 'y-protocols/awareness'
import type { Role } from './api'
import { h, replace } from './dom'
import { peopleOf } from './room-state-presence'
import { followTo } from './room-state-files'
import type { Project } from './filetree'

export interface PresenceOptions {
  awareness: Awareness
  doc: Y.Doc
  /** The files: which one the editor shows, and opening another to follow the candidate. */
  project: Project
  view: EditorView
  role: Role
  myName: string
  peopleEl: HTMLElement
  editorHost: HTMLElement
  /** Where the interviewer's "Follow the candidate" toggle goes; null for the candidate. */
  toolbar: HTMLElement | null
}

export function watchPresence(o: PresenceOptions): void {
  const { awareness, doc, project, view, role, myName, peopleEl, editorHost, toolbar } = o
  const renderPeople = () => {
    replace(peopleEl, peopleOf(awareness.getStates(), { clientId: doc.clientID, role, name: myName }).map((p) => {
      const dot = h('span', { class: 'dot', 'aria-hidden': 'true' })
      dot.style.backgroundColor = p.color
      return h('li', { class: 'person' }, dot, p.name, p.me ? h('span', { class: 'muted' }, ' (you)') : null)
    }))
  }
  awareness.on('change', renderPeople)
  renderPeople()
  // A remote cursor's name label shows when that person moves, then fades (style.css), so it
  // never sits over the line above for long.
  awareness.on('change', ({ added, updated }: { added: number[]; updated: number[] }) => {
    const names = new Set<string>()
    for (const client of [...added, ...updated]) {
      if (client === doc.clientID) continue
      const name = (awareness.getStates().get(client) as { user?: { name?: string } } | undefined)?.user?.name
      if (name) names.add(name)
    }
    if (names.size === 0) return
    requestAnimationFrame(() => {
      for (const label of Array.from(editorHost.querySelectorAll<HTMLElement>('.cm-ySelectionInfo'))) {
        if (!names.has(label.textContent ?? '')) continue
        label.classList.remove('duet-recent')
        void label.offsetWidth // restart the animation
        label.classList.add('duet-recent')
      }
    })
  })

  // Off-screen cursors and following.
  const followBtn = toolbar
    ? h('button', { type: 'button', 'aria-pressed': 'false', class: 'follow', 'data-testid': 'follow' }, 'Follow the candidate')
    : null
  if (toolbar && followBtn) toolbar.insertBefore(followBtn, toolbar.children[3])
  let following = false
  followBtn?.addEventListener('click', () => {
    following = !following
    followBtn.setAttribute('aria-pressed', String(following))
    if (following && !followFile()) scrollToCursor(otherCursors().find((c) => c.role === 'candidate'))
  })
  /** Opens the file the candidate's editor is on, if it is not shown: whether it did. */
  const followFile = (): boolean => {
    const path = followTo(project.whereEveryoneIs(), project.current().path)
    return path !== null && project.open(path)
  }
  const offscreen = h('button', { type: 'button', class: 'offscreen-cursor', hidden: true, 'data-testid': 'offscreen-cursor' })
  editorHost.appendChild(offscreen)
  const otherCursors = (): { name: string; role: string; pos: number }[] => {
    const out: { name: string; role: string; pos: number }[] = []
    const ytext = project.current().ytext
    for (const [client, state] of awareness.getStates()) {
      if (client === doc.clientID) continue
      const st = state as { user?: { name?: string; role?: string }; cursor?: { head?: unknown } }
      if (!st.user?.name || !st.cursor?.head) continue
      try {
        const abs = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(st.cursor.head), doc)
        if (abs && abs.type === ytext) out.push({ name: st.user.name, role: st.user.role ?? '', pos: Math.min(abs.index, view.state.doc.length) })
      } catch { /* a cursor this page cannot place */ }
    }
    return out
  }
  const scrollToCursor = (c: { pos: number } | undefined) => {
    if (c) view.dispatch({ effects: EditorView.scrollIntoView(c.pos, { y: 'center' }) })
  }
  let cursorFrame = 0
  const checkCursors = (moved: boolean) => {
    if (cursorFrame) return
    cursorFrame = requestAnimationFrame(() => {
      cursorFrame = 0
      // Following across files: the candidate's file first (opening it checks again).
      if (moved && following && followFile()) return
      const cursors = otherCursors()
      const candidate = cursors.find((c) => c.role === 'candidate')
      if (moved && following && candidate) {
        scrollToCursor(candidate)
        // CodeMirror scrolls in its next measure; look again once it has.
        window.setTimeout(() => checkCursors(false), 100)
        return
      }
      const box = view.scrollDOM.getBoundingClientRect()
      const away = cursors.map((c) => {
        const line = view.state.doc.lineAt(c.pos)
        const top = view.lineBlockAt(c.pos).top + view.documentTop
        const where = top < box.top ? 'above' : top > box.bottom - 8 ? 'below' : null
        return { ...c, line: line.number, where }
      }).find((c) => c.where !== null)
      if (!away) { offscreen.hidden = true; return }
      offscreen.hidden = false
      offscreen.dataset.where = away.where!
      offscreen.textContent = `${away.where === 'above' ? '↑' : '↓'} ${away.name} is at line ${away.line}`
      offscreen.onclick = () => scrollToCursor(away)
    })
  }
  awareness.on('change', () => checkCursors(true))
  view.scrollDOM.addEventListener('scroll', () => checkCursors(false), { passive: true })
  // Another file shown: its cursors, and when following, the candidate's place in it.
  project.onSwitch(() => window.setTimeout(() => checkCursors(following), 0))

}
