// CodeMirror 6 bound to the shared `main.py` Y.Text, with remote cursors labelled by the names
// the server stamps into awareness. Tab indents; Esc then Tab leaves the editor (CodeMirror's
// tab-focus escape), so keyboard users are never trapped.
import { EditorState, type Extension } from '@codemirror/state'
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  drawSelection, highlightSpecialChars,
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

export function createEditor(opts: EditorOptions): EditorView {
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
    EditorView.contentAttributes.of({ 'aria-label': opts.label, 'aria-multiline': 'true' }),
    EditorView.lineWrapping,
  ]
  if (opts.onRun) {
    const run = opts.onRun
    extensions.push(keymap.of([{ key: 'Mod-Enter', run: () => { run(); return true } }]))
  }
  if (opts.readOnly) {
    extensions.push(EditorState.readOnly.of(true), EditorView.editable.of(false))
  } else {
    const undoManager = new Y.UndoManager(opts.ytext)
    extensions.push(keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]))
    extensions.push(yCollab(opts.ytext, opts.awareness, { undoManager }))
  }
  if (opts.readOnly && opts.awareness) {
    extensions.push(yCollab(opts.ytext, opts.awareness))
  }
  return new EditorView({
    state: EditorState.create({ doc: opts.ytext.toString(), extensions }),
    parent: opts.parent,
  })
}

/** A read-only viewer for plain text (replay, tests). */
export function createViewer(parent: HTMLElement, text: string, label: string): EditorView {
  return new EditorView({
    state: EditorState.create({
      doc: text,
      extensions: [
        styleNonce(), lineNumbers(), python(), syntaxHighlighting(classHighlighter), EditorState.readOnly.of(true),
        EditorView.editable.of(false), EditorView.contentAttributes.of({ 'aria-label': label }),
        EditorView.lineWrapping,
      ],
    }),
    parent,
  })
}

export function setViewerText(view: EditorView, text: string): void {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } })
}
