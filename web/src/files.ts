// The candidate's files in the shared document, as docs/API.md ("Files") and the server
// (crates/core/src/files.rs) define them: each file's text is a root Y.Text named by a path;
// renames and deletes are entries of the root Y.Map `files` (path -> {deleted: true} or
// {text: ROOT}). This module reads which files a document lists and changes them (create,
// rename, delete) by the server's rules, refusing here, with the server's words, what the
// server would refuse: a refused update closes the editor socket, and the page would send it
// again on every reconnect. No DOM: test/files.test.ts drives it with real Yjs documents.
import * as Y from 'yjs'

/** The map of renames and deletes (duet_protocol::FILES). */
export const FILES = 'files'
/** The program every run starts (duet_protocol::MAIN_FILE): never deleted nor renamed. */
export const MAIN_FILE = 'main.py'
/** Longest path (every character is ASCII). */
export const MAX_PATH = 128
/** Most files listed at once. */
export const MAX_FILES = 64
/** Most root texts a document may hold, deleted files' included. */
export const MAX_TEXTS = 256
/** The extensions a file may have. */
export const EXTENSIONS = ['py', 'txt', 'md', 'csv', 'json', 'toml', 'ini', 'cfg', 'sql'] as const

/** Why `path` is not a file name the server accepts, in its words, or null when it is one. */
export function checkPath(path: string): string | null {
  const refuse = (why: string) => `file name "${path.slice(0, 140)}": ${why}`
  if (path.length === 0 || path.length > MAX_PATH) return refuse(`must be 1 to ${MAX_PATH} characters`)
  const bad = [...path].find((c) => !/^[A-Za-z0-9_./-]$/.test(c))
  if (bad !== undefined) return refuse(`"${bad}" is not allowed (only letters, digits, _ . / -)`)
  if (path.startsWith('/')) return refuse('must be relative (no leading /)')
  const segments = path.split('/')
  if (segments.includes('..')) return refuse('must not contain ..')
  if (segments.some((s) => s === '' || s === '.')) return refuse('has an empty or . segment')
  const name = segments[segments.length - 1]
  const dot = name.lastIndexOf('.')
  if (dot <= 0 || !(EXTENSIONS as readonly string[]).includes(name.slice(dot + 1))) {
    return refuse(`must end in one of .${EXTENSIONS.join(' .')}`)
  }
  return null
}

/** Whether the editor treats the file as Python (anything else opens as plain text). */
export function isPython(path: string): boolean {
  return path.endsWith('.py')
}

/** An entry of `files` as the server reads it (anything else it would not have let in). */
type Entry = { deleted: true } | { text: string }

function entryOf(value: unknown): Entry | null {
  if (typeof value !== 'object' || value === null) return null
  const v = value as { deleted?: unknown; text?: unknown }
  if (v.deleted === true && v.text === undefined) return { deleted: true }
  if (typeof v.text === 'string' && v.deleted === undefined) return { text: v.text }
  return null
}

/** Whether the document holds a root text `name` (one that ever had content, or main.py). */
function hasText(doc: Y.Doc, name: string): boolean {
  if (name === MAIN_FILE) return true
  const type = doc.share.get(name)
  // A root this page only looked up (doc.getText without writing) never reached the server.
  return type !== undefined && type._start !== null
}

/** Every root text the document holds, by name. */
function texts(doc: Y.Doc): string[] {
  const names = [...doc.share.keys()].filter((n) => checkPath(n) === null && hasText(doc, n))
  if (!names.includes(MAIN_FILE)) names.push(MAIN_FILE)
  return names
}

/**
 * The files `doc` lists: path to the name of the root text it shows, sorted by path. A path
 * with no entry is listed when its text exists; `{text: ROOT}` lists the path showing ROOT
 * (when the document has it); `{deleted: true}` hides the path.
 */
export function listFiles(doc: Y.Doc): Map<string, string> {
  const entries = doc.getMap(FILES)
  const out = new Map<string, string>()
  for (const name of texts(doc)) if (!entries.has(name)) out.set(name, name)
  for (const [path, value] of entries.entries()) {
    const entry = entryOf(value)
    if (entry && 'text' in entry && hasText(doc, entry.text)) out.set(path, entry.text)
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** The listed path showing the root text `root`, if any. */
export function pathOf(listing: Map<string, string>, root: string): string | null {
  for (const [path, r] of listing) if (r === root) return path
  return null
}

/** What a new file holds: a text must have content to exist for everyone (an empty one is not sent). */
export const NEW_FILE_TEXT = '\n'

/**
 * Creates the file `path` (holding a newline) in one transaction, or answers why not. A path
 * whose old text is free (a file deleted before) gets that text back, emptied; one whose text
 * another file shows now (it was renamed away) gets a new text under an unused name, hidden by
 * a delete entry.
 */
export function createFile(doc: Y.Doc, path: string): string | null {
  const bad = checkPath(path)
  if (bad) return bad
  const listing = listFiles(doc)
  if (listing.has(path)) return `"${path}" already exists`
  if (folderOf(listing, path)) return `"${path}" is a folder`
  const clash = [...listing.keys()].find((p) => path.startsWith(`${p}/`))
  if (clash) return `"${clash}" is a file, so it cannot hold "${path}"`
  if (listing.size >= MAX_FILES) return `at most ${MAX_FILES} files`
  const all = texts(doc)
  const shown = new Set(listing.values())
  const entries = doc.getMap(FILES)
  let root = path
  if (hasText(doc, path) && shown.has(path)) {
    root = freshName(doc, path, shown)
  }
  if (!hasText(doc, root) && all.length >= MAX_TEXTS) {
    return `at most ${MAX_TEXTS} file texts, deleted files' included`
  }
  doc.transact(() => {
    const text = doc.getText(root)
    if (text.length > 0) text.delete(0, text.length)
    text.insert(0, NEW_FILE_TEXT)
    if (root !== path) entries.set(root, { deleted: true })
    // A path with an entry (deleted before) shows its text only through one.
    if (entries.has(path) || root !== path) entries.set(path, { text: root })
  })
  return null
}

/** An unused root name for a new text of `path` (`shop/cart.1.py`, `shop/cart.2.py`...). */
function freshName(doc: Y.Doc, path: string, shown: Set<string>): string {
  const dot = path.lastIndexOf('.')
  for (let n = 1; ; n++) {
    const name = `${path.slice(0, dot)}.${n}${path.slice(dot)}`
    if (checkPath(name) === null && !hasText(doc, name) && !shown.has(name) && !doc.getMap(FILES).has(name)) return name
    if (checkPath(name) !== null) return path // too long for another name: the server refuses it, saying why
  }
}

/** Whether `path` names a folder of the listing (some file lies under it). */
function folderOf(listing: Map<string, string>, path: string): boolean {
  return [...listing.keys()].some((p) => p.startsWith(`${path}/`))
}

/** Renames the file `from` to `to` in one transaction (its text is not copied), or answers why not. */
export function renameFile(doc: Y.Doc, from: string, to: string): string | null {
  const listing = listFiles(doc)
  const root = listing.get(from)
  if (root === undefined) return `"${from}" no longer exists`
  if (from === MAIN_FILE) return `"${MAIN_FILE}" is the program every run starts: it cannot be deleted or renamed`
  if (to === from) return null
  const bad = checkPath(to)
  if (bad) return bad
  if (listing.has(to)) return `"${to}" already exists: a file cannot be renamed or moved onto it`
  if (folderOf(listing, to)) return `"${to}" is a folder`
  const clash = [...listing.keys()].find((p) => p !== from && to.startsWith(`${p}/`))
  if (clash) return `"${clash}" is a file, so it cannot hold "${to}"`
  const entries = doc.getMap(FILES)
  doc.transact(() => {
    entries.set(to, { text: root })
    entries.set(from, { deleted: true })
  })
  return null
}

/** Deletes the file `path` for everyone (its text stays in the document, unlisted), or answers why not. */
export function deleteFile(doc: Y.Doc, path: string): string | null {
  if (path === MAIN_FILE) return `"${MAIN_FILE}" is the program every run starts: it cannot be deleted or renamed`
  if (!listFiles(doc).has(path)) return `"${path}" no longer exists`
  doc.getMap(FILES).set(path, { deleted: true })
  return null
}

/** A folder or a file of the tree the page draws. */
export type TreeNode =
  | { kind: 'folder'; name: string; path: string; children: TreeNode[] }
  | { kind: 'file'; name: string; path: string }

/** The listed paths as nested folders: folders first, then files, each by name. */
export function fileTree(paths: Iterable<string>): TreeNode[] {
  const root: TreeNode[] = []
  for (const path of paths) {
    const parts = path.split('/')
    let level = root
    for (let i = 0; i < parts.length - 1; i++) {
      const folderPath = parts.slice(0, i + 1).join('/')
      let folder = level.find((n): n is Extract<TreeNode, { kind: 'folder' }> => n.kind === 'folder' && n.path === folderPath)
      if (!folder) {
        folder = { kind: 'folder', name: parts[i], path: folderPath, children: [] }
        level.push(folder)
      }
      level = folder.children
    }
    level.push({ kind: 'file', name: parts[parts.length - 1], path })
  }
  const order = (nodes: TreeNode[]): TreeNode[] => {
    nodes.sort((a, b) => (a.kind !== b.kind ? (a.kind === 'folder' ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const n of nodes) if (n.kind === 'folder') order(n.children)
    return nodes
  }
  return order(root)
}
