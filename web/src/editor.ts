// CodeMirror 6 bound to one file's shared Y.Text at a time, with remote cursors labelled by the
// names the server stamps into awareness. `show` rebinds it to another file: each file keeps its
// own undo history (a Y.UndoManager per text) and where this person's cursor was. Python files
// get Python highlighting; data files (.csv .json .txt .md ...) open as plain text. Tab
// indents; Esc then Tab leaves the editor (CodeMirror's tab-focus escape), so keyboard users are
// never trapped.
import { EditorState, Compartment, RangeSetBuilder, type Extension } from '@codemirror/state'
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  drawSelection, highlightSpecialChars, Decoration, ViewPlugin, type DecorationSet, type ViewUpdate,
} from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { python } from '@codemirror/lang-python'
import { syntaxHighlighting, indentOnInput, bracketMatching } from '@codemirror/language'
import { classHighlighter } from '@lezer/highlight'
import * as Y from 'yjs'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import type { Awareness } from 'y-protocols/awareness'
import { isPython } from './files'

export interface EditorOptions {
  parent: HTMLElement
  /** The first file shown, and its text. */
  path: string
  ytext: Y.Text
  awareness: Awareness | null
  readOnly: boolean
  onRun?: () => void
  /** The editor's accessible name for a file. */
  label: (path: string) => string
}

/**
 * The nonce the server put in this page's Content-Security-Policy for style elements:
 * CodeMirror writes its theme into <style> elements and needs it (no 'unsafe-inline').
 */
function styleNonce(): Extension {
  const nonce = document.querySelector('meta[name="duet-style-nonce"]')?.getAttribute('content')
  return nonce && !nonce.startsWith('__') ? EditorView.cspNonce.of(nonce) : []
}

/**
 * Wrapped lines keep their indentation: each line is drawn with a hanging indent as wide as its
 * leading whitespace, so the continuation of a long indented line starts under its first
 * character rather than at the left edge (CodeMirror's lineWrapping alone starts it at column 0).
 */
const hangingIndent = ViewPlugin.fromClass(class {
  decorations: DecorationSet
  constructor(view: EditorView) { this.decorations = this.build(view) }
  update(u: ViewUpdate) {
    if (u.docChanged || u.viewportChanged) this.decorations = this.build(u.view)
  }
  build(view: EditorView): DecorationSet {
    const builder = new RangeSetBuilder<Decoration>()
    const tab = view.state.tabSize
    for (const { from, to } of view.visibleRanges) {
      for (let pos = from; pos <= to;) {
        const line = view.state.doc.lineAt(pos)
        const lead = /^[ \t]*/.exec(line.text)![0]
        if (lead.length > 0 && lead.length < line.text.length) {
          let cols = 0
          for (const c of lead) cols = c === '\t' ? cols + tab - (cols % tab) : cols + 1
          builder.add(line.from, line.from, Decoration.line({
            attributes: { style: `padding-left: calc(${cols}ch + 6px); text-indent: -${cols}ch` },
          }))
        }
        pos = line.to + 1
      }
    }
    return builder.finish()
  }
}, { decorations: (p) => p.decorations })

/** The shared editor: which file it shows, a switch to another, and read-only or editable. */
export interface SharedEditor {
  view: EditorView
  /** The text shown now. */
  readonly ytext: Y.Text
  /** Shows the file `path` whose text is `ytext`, with that file's undo history and cursor. */
  show(path: string, ytext: Y.Text): void
  /** The file shown was renamed to `path`: its name and language follow. */
  renamed(path: string): void
  setReadOnly(readOnly: boolean): void
}

export function createEditor(opts: EditorOptions): SharedEditor {
  const editable = new Compartment()
  // What depends on the file's name: the editor's accessible name and the language.
  const named = new Compartment()
  const naming = (path: string): Extension => [
    isPython(path) ? python() : [],
    // tabindex keeps the code reachable by keyboard (to read and scroll) when it is read-only.
    EditorView.contentAttributes.of({ 'aria-label': opts.label(path), 'aria-multiline': 'true', tabindex: '0', 'data-path': path }),
  ]
  let readOnly = opts.readOnly
  const lock = (locked: boolean): Extension => locked
    ? [EditorState.readOnly.of(true), EditorView.editable.of(false)]
    : []
  // One undo history per text, kept while the page lives: undo in a file undoes that file's
  // edits only, after switching away and back.
  const histories = new Map<Y.Text, Y.UndoManager>()
  // Where this person's cursor was in each text, relative to the text (so others' edits
  // meanwhile move it as they move the text).
  const cursors = new Map<Y.Text, Y.RelativePosition>()
  const stateFor = (path: string, ytext: Y.Text): EditorState => {
    const extensions: Extension[] = [
      styleNonce(),
      lineNumbers(),
      highlightActiveLineGutter(),
      highlightSpecialChars(),
      drawSelection(),
      indentOnInput(),
      bracketMatching(),
      highlightActiveLine(),
      named.of(naming(path)),
      syntaxHighlighting(classHighlighter),
      EditorState.tabSize.of(4),
      EditorView.lineWrapping,
      hangingIndent,
      editable.of(lock(readOnly)),
    ]
    if (opts.onRun) {
      const run = opts.onRun
      extensions.push(keymap.of([{ key: 'Mod-Enter', run: () => { run(); return true } }]))
    }
    // Bound to the shared text either way: a read-only editor still shows everyone's edits and
    // cursors; the compartment only decides whether this person may type.
    let undoManager = histories.get(ytext)
    if (!undoManager) { undoManager = new Y.UndoManager(ytext); histories.set(ytext, undoManager) }
    extensions.push(keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]))
    extensions.push(yCollab(ytext, opts.awareness, { undoManager }))
    const doc = ytext.toString()
    const saved = cursors.get(ytext)
    const at = saved ? Y.createAbsolutePositionFromRelativePosition(saved, ytext.doc!) : null
    const head = at && at.type === ytext ? Math.min(at.index, doc.length) : 0
    return EditorState.create({ doc, extensions, selection: { anchor: head } })
  }
  let current = opts.ytext
  const view = new EditorView({ state: stateFor(opts.path, opts.ytext), parent: opts.parent })
  return {
    view,
    get ytext() { return current },
    show(path: string, ytext: Y.Text) {
      cursors.set(current, Y.createRelativePositionFromTypeIndex(current, view.state.selection.main.head))
      current = ytext
      view.setState(stateFor(path, ytext))
      view.contentDOM.setAttribute('aria-readonly', String(readOnly))
      view.dispatch({ effects: EditorView.scrollIntoView(view.state.selection.main.head, { y: 'center' }) })
    },
    renamed(path: string) {
      view.dispatch({ effects: named.reconfigure(naming(path)) })
    },
    setReadOnly(locked: boolean) {
      readOnly = locked
      view.dispatch({ effects: editable.reconfigure(lock(locked)) })
      view.contentDOM.setAttribute('aria-readonly', String(locked))
    },
  }
}

/** A read-only viewer for plain text (replay, tests). */
export function createViewer(parent: HTMLElement, text: string, label: string): EditorView {
  return new EditorView({
    state: EditorState.create({
      doc: text,
      extensions: [
        styleNonce(), lineNumbers(), python(), syntaxHighlighting(classHighlighter), EditorState.readOnly.of(true),
        EditorView.editable.of(false), EditorView.contentAttributes.of({ 'aria-label': label, tabindex: '0' }),
        EditorView.lineWrapping, hangingIndent,
      ],
    }),
    parent,
  })
}

export function setViewerText(view: EditorView, text: string): void {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } })
}
