// The run console: output rendered as text, stdout and stderr told apart (colour, a left rule,
// and a hidden "error output" label for screen readers), terminal escape sequences removed
// rather than interpreted (a program cannot move the cursor, retitle the page or write links),
// and an input line that feeds a running program's stdin.
import { h, clear } from './dom'

/** CSI, OSC (ended by BEL or ST), and two-character escape sequences. */
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g
const MAX_CHARS = 200_000

export function sanitize(data: string): string {
  return data.replace(/\r\n/g, '\n').replace(/\r/g, '\n').replace(ESCAPES, '')
}

export interface ConsoleView {
  element: HTMLElement
  write(stream: 'stdout' | 'stderr' | 'stdin' | 'info', data: string): void
  clear(): void
  setRunning(running: boolean): void
  focusInput(): void
}

export function createConsole(onInput: ((data: string, eof: boolean) => Promise<void>) | null): ConsoleView {
  const log = h('div', {
    class: 'console-log',
    role: 'log',
    'aria-live': 'polite',
    'aria-label': 'Program output',
    tabindex: '0',
    'data-testid': 'console',
  })
  let chars = 0
  let stickToBottom = true
  log.addEventListener('scroll', () => {
    stickToBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8
  })

  const input = h('input', {
    type: 'text',
    class: 'console-input',
    id: 'console-input',
    autocomplete: 'off',
    spellcheck: 'false',
    disabled: true,
    placeholder: 'Input for the running program or REPL (Enter sends a line)',
  })
  const eofButton = h('button', { type: 'button', class: 'small', disabled: true, title: 'End the input (Ctrl+D)' }, 'Send EOF')
  const send = async (eof: boolean) => {
    if (!onInput) return
    const line = input.value
    input.value = ''
    const data = eof ? line : line + '\n'
    if (line) write('stdin', line + (eof ? '' : '\n'))
    await onInput(data, eof)
  }
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); void send(false) }
    if (e.key === 'd' && e.ctrlKey) { e.preventDefault(); void send(true) }
  })
  eofButton.addEventListener('click', () => void send(true))

  const form = onInput
    ? h('div', { class: 'console-input-row' },
        h('label', { for: 'console-input', class: 'sr-only' }, 'Program input (stdin)'),
        h('span', { class: 'prompt-sign', 'aria-hidden': 'true' }, '›'),
        input, eofButton)
    : null

  const element = h('section', { class: 'console', 'aria-label': 'Console' }, log, form)

  function write(stream: 'stdout' | 'stderr' | 'stdin' | 'info', data: string) {
    const text = stream === 'info' ? data : sanitize(data)
    if (!text) return
    const last = log.lastElementChild as HTMLElement | null
    if (last && last.dataset.stream === stream && stream !== 'info') {
      last.lastChild!.textContent += text
    } else {
      const span = h('span', { class: `out out-${stream}`, 'data-stream': stream })
      if (stream === 'stderr') span.appendChild(h('span', { class: 'sr-only' }, 'error output: '))
      span.appendChild(document.createTextNode(text))
      log.appendChild(span)
    }
    chars += text.length
    while (chars > MAX_CHARS && log.firstElementChild) {
      chars -= log.firstElementChild.textContent?.length ?? 0
      log.removeChild(log.firstElementChild)
    }
    if (stickToBottom) log.scrollTop = log.scrollHeight
  }

  return {
    element,
    write,
    clear() { clear(log); chars = 0 },
    setRunning(running: boolean) {
      input.disabled = !running
      eofButton.disabled = !running
    },
    focusInput() { input.focus() },
  }
}
