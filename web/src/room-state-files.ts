// The room page's open files, without the page: the tabs, the file the editor shows, where
// everyone else is (which file their editor is on), and whom the interviewer follows. A tab
// holds a file's text (its root Y.Text's name), not its path, so a rename by anyone keeps the
// tab and its editor; a delete closes it. Pure: filetree.ts renders it, and
// test/room-state-files.test.ts tells its stories.

/** A tab as the page draws it. */
export interface Tab { path: string; root: string; active: boolean }

/** What the page must do after the listing changed. */
export interface Change {
  /** The editor's file changed (its own was deleted): show this one. */
  switchTo: { path: string; root: string } | null
  /** The path of the editor's file changed (renamed): say so in the awareness state. */
  renamed: boolean
}

export class OpenFiles {
  /** The roots of the open tabs, in tab order. */
  private tabs: string[]
  private activeRoot: string
  private listing: Map<string, string>

  constructor(listing: Map<string, string>, first: string) {
    this.listing = listing
    const root = listing.get(first) ?? first
    this.tabs = [root]
    this.activeRoot = root
  }

  /** The file the editor shows. */
  get active(): { path: string; root: string } {
    return { path: this.pathOf(this.activeRoot) ?? this.activeRoot, root: this.activeRoot }
  }

  tabList(): Tab[] {
    return this.tabs.map((root) => ({ path: this.pathOf(root) ?? root, root, active: root === this.activeRoot }))
  }

  /** Opens the listed file `path` in a tab (a new one after the active tab) and shows it. */
  open(path: string): { path: string; root: string } | null {
    const root = this.listing.get(path)
    if (root === undefined) return null
    if (!this.tabs.includes(root)) this.tabs.splice(this.tabs.indexOf(this.activeRoot) + 1, 0, root)
    this.activeRoot = root
    return { path, root }
  }

  /**
   * Closes the tab of `path`. Closing the shown file shows its neighbour; the last tab never
   * closes (the editor always shows a file). Answers the file to show, if it changed.
   */
  close(path: string): { path: string; root: string } | null {
    const root = this.listing.get(path)
    if (root === undefined || !this.tabs.includes(root) || this.tabs.length === 1) return null
    const at = this.tabs.indexOf(root)
    this.tabs.splice(at, 1)
    if (root !== this.activeRoot) return null
    this.activeRoot = this.tabs[Math.min(at, this.tabs.length - 1)]
    return this.active
  }

  /** The files the document lists changed (someone created, renamed or deleted one). */
  listingChanged(listing: Map<string, string>): Change {
    const before = this.active.path
    this.listing = listing
    const shown = new Set(listing.values())
    const at = this.tabs.indexOf(this.activeRoot)
    this.tabs = this.tabs.filter((root) => shown.has(root))
    if (shown.has(this.activeRoot)) {
      return { switchTo: null, renamed: this.active.path !== before }
    }
    // The shown file was deleted: its neighbour, else main.py.
    const next = this.tabs[Math.min(at, this.tabs.length - 1)] ?? listing.get('main.py') ?? [...shown][0]
    if (next === undefined) return { switchTo: null, renamed: false }
    if (!this.tabs.includes(next)) this.tabs.push(next)
    this.activeRoot = next
    return { switchTo: this.active, renamed: false }
  }

  private pathOf(root: string): string | null {
    for (const [path, r] of this.listing) if (r === root) return path
    return null
  }
}

/** Someone else in the room, on a file. */
export interface Here { name: string; role: string; color: string }

/**
 * Which listed file each other person's editor is on, from the awareness states the server
 * relays (`file`, the path each page announces; the server stamps `user`). A state naming no
 * listed file (an older page, a file deleted meanwhile) places nobody. One entry per person
 * and file, by path.
 */
export function whereEveryoneIs(states: Iterable<[number, unknown]>, self: number, listing: Map<string, string>): Map<string, Here[]> {
  const out = new Map<string, Here[]>()
  for (const [client, state] of states) {
    if (client === self) continue
    const st = state as { user?: { name?: unknown; role?: unknown; color?: unknown }; file?: unknown } | null
    const name = st?.user?.name
    if (typeof name !== 'string' || !name || typeof st?.file !== 'string' || !listing.has(st.file)) continue
    const here: Here = {
      name, role: typeof st.user?.role === 'string' ? st.user.role : '',
      color: typeof st.user?.color === 'string' ? st.user.color : '#888',
    }
    const list = out.get(st.file) ?? []
    if (!list.some((h) => h.name === here.name && h.role === here.role)) list.push(here)
    out.set(st.file, list)
  }
  return out
}

/**
 * The file to follow the candidate to: the one the candidate's editor is on when it is not
 * the one shown, else null (also when no candidate is placed on a file).
 */
export function followTo(where: Map<string, Here[]>, shown: string): string | null {
  for (const [path, people] of where) {
    if (people.some((p) => p.role === 'candidate')) return path === shown ? null : path
  }
  return null
}
