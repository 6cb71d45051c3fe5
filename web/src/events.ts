// The room's events websocket (run start, output, finish, question switches) with reconnect.
import { wsBase, type RoomEvent } from './api'

export interface EventsSocket {
  close(): void
}

export function connectEvents(
  interviewId: string,
  token: string,
  onEvent: (event: RoomEvent) => void,
  /** `final` is the server's reason when it closed the socket for good (1008): no retry then. */
  onStatus: (connected: boolean, final?: string) => void,
): EventsSocket {
  let ws: WebSocket | null = null
  let closed = false
  let delay = 250
  const open = () => {
    if (closed) return
    ws = new WebSocket(`${wsBase()}/api/interviews/${encodeURIComponent(interviewId)}/events?token=${encodeURIComponent(token)}`)
    ws.onopen = () => { delay = 250; onStatus(true) }
    ws.onmessage = (message) => {
      if (typeof message.data !== 'string') return
      try { onEvent(JSON.parse(message.data) as RoomEvent) } catch { /* not ours to crash on */ }
    }
    ws.onclose = (event) => {
      if (event.code === 1008) { closed = true; onStatus(false, event.reason || 'closed by the server'); return }
      onStatus(false)
      if (closed) return
      window.setTimeout(open, delay)
      delay = Math.min(delay * 2, 5000)
    }
  }
  open()
  return { close() { closed = true; ws?.close() } }
}
