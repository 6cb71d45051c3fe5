// Integrity signals, disclosed: large pastes (their size, never their content) and the tab
// losing focus are posted as timestamped signals for the interviewer's review. The candidate is
// told so in the room. Nothing is blocked: blocking paste hurts people who rely on it.
import { api, ApiError, type NewSignal } from './api'
import { h } from './dom'

const LARGE_PASTE = 200 // characters

export function watchSignals(host: HTMLElement, token: string, base: string, editor: HTMLElement): void {
  const note = h('p', { class: 'banner notice', 'data-testid': 'signals-notice' },
    'This room records when you paste a large block (its size, never its content) and when this tab loses focus. ' +
    'Your interviewer sees these beside your work as context, not as a verdict. Nothing is blocked.')
  host.appendChild(note)
  let available = true
  let lastBlur = 0
  const post = async (body: NewSignal) => {
    if (!available) return
    try {
      await api(token, 'POST', `${base}/signals`, body)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        available = false
        note.append(' (This server does not record them yet.)')
      }
    }
  }
  editor.addEventListener('paste', (e) => {
    const size = e.clipboardData?.getData('text/plain').length ?? 0
    if (size >= LARGE_PASTE) void post({ kind: 'paste', size, at: Date.now() })
  })
  window.addEventListener('blur', () => {
    const now = Date.now()
    if (now - lastBlur < 2000) return
    lastBlur = now
    void post({ kind: 'blur', at: now })
  })
}
