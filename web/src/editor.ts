// CodeMirror 6 bound to the shared `main.py` Y.Text, with remote cursors labelled by the names
// the server stamps into awareness. Tab indents; Esc then Tab leaves the editor (CodeMirror's
// tab-focus escape), so keyboard users are never trapped.
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

export interface EditorOptions {
  parent: HTMLElement
  ytext: Y.Text
  awareness: Awareness | null
  readOnly: boolean
  onRun?: () => void
  label: string
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

/** The shared editor and a switch to make it read-only (the interview ended) or editable again. */
export interface SharedEditor {
  view: EditorView
  setReadOnly(readOnly: boolean): void
}

export function createEditor(opts: EditorOptions): SharedEditor {
  const editable = new Compartment()
  const lock = (readOnly: boolean): Extension => readOnly
    ? [EditorState.readOnly.of(true), EditorView.editable.of(false)]
    : []
  const extensions: Extension[] = [
    styleNonce(),
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    drawSelection(),
    indentOnInput(),
    bracketMatching(),
    highlightActiveLine(),
    python(),
    syntaxHighlighting(classHighlighter),
    EditorState.tabSize.of(4),
    // tabindex keeps the code reachable by keyboard (to read and scroll) when it is read-only.
    EditorView.contentAttributes.of({ 'aria-label': opts.label, 'aria-multiline': 'true', tabindex: '0' }),
    EditorView.lineWrapping,
    hangingIndent,
    editable.of(lock(opts.readOnly)),
  ]
  if (opts.onRun) {
    const run = opts.onRun
    extensions.push(keymap.of([{ key: 'Mod-Enter', run: () => { run(); return true } }]))
  }
  // Bound to the shared text either way: a read-only editor still shows everyone's edits and
  // cursors; the compartment only decides whether this person may type.
  const undoManager = new Y.UndoManager(opts.ytext)
  extensions.push(keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]))
  extensions.push(yCollab(opts.ytext, opts.awareness, { undoManager }))
  const view = new EditorView({
    state: EditorState.create({ doc: opts.ytext.toString(), extensions }),
    parent: opts.parent,
  })
  return {
    view,
    setReadOnly(readOnly: boolean) {
      view.dispatch({ effects: editable.reconfigure(lock(readOnly)) })
      view.contentDOM.setAttribute('aria-readonly', String(readOnly))
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
