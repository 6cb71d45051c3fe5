// The "saved" indicator's source of truth.
//
// What the protocol gives: the server appends every edit to its durable log before it sends
// anything that follows it to anyone, and it handles one connection's messages in order. So
// when this client sends its edits and then a sync step 1, the server's sync step 2 answering
// that step 1 is held back until every edit sent before it is stored. Receiving that answer is
// the proof that the server holds those edits; nothing weaker (the socket being open, the send
// buffer draining) is. We call such a step 1 a probe and keep at most one in flight: the server
// may answer two queued step 1s with one step 2 ("answers are coalesced"), so counting answers
// is only sound with one outstanding. The probe is sent only after the connection's first sync
// (the answer to y-websocket's own step 1), so the two never overlap.
//
// Edits made while offline are sent by y-websocket in its answer to the server's step 1 on
// reconnect, before the first sync completes; the probe after that sync covers them.
import * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'

export type SaveState =
  | { kind: 'saved'; at: number | null }
  | { kind: 'saving'; pending: number; slow: boolean }
  | { kind: 'offline'; pending: number }
  | { kind: 'connecting'; pending: number }
  /** The interview has ended: the server keeps no edit any more, whatever this page holds. */
  | { kind: 'ended'; pending: number }
  /** This page's link was replaced by a new one: its sockets are closed for good. */
  | { kind: 'revoked'; pending: number }

export class SaveTracker {
  private local = 0
  private confirmed = 0
  private probe: { upTo: number; ws: WebSocket; sentAt: number } | null = null
  private timer: number | null = null
  private slowTimer: number | null = null
  private lastSavedAt: number | null = null
  private listeners: ((s: SaveState) => void)[] = []
  private ended = false
  private revoked = false

  constructor(private doc: Y.Doc, private provider: WebsocketProvider) {
    doc.on('update', (_update: Uint8Array, origin: unknown) => {
      if (origin === provider) return // came from the server: nothing of ours to store
      this.local += 1
      this.schedule()
      this.emit()
    })
    const handlers = provider.messageHandlers
    const original = handlers[0]
    handlers[0] = (encoder, decoder, p, emitSynced, messageType) => {
      // Peek at the sync message type without consuming the decoder.
      const peek = decoding.createDecoder(decoder.arr.subarray(decoder.pos))
      const syncType = decoding.readVarUint(peek)
      original(encoder, decoder, p, emitSynced, messageType)
      if (syncType === syncProtocol.messageYjsSyncStep2 && this.probe && this.probe.ws === provider.ws) {
        this.confirmed = Math.max(this.confirmed, this.probe.upTo)
        this.probe = null
        this.lastSavedAt = Date.now()
        this.schedule()
        this.emit()
      }
    }
    provider.on('status', () => {
      if (!provider.wsconnected) this.probe = null
      this.emit()
    })
    provider.on('sync', (synced: boolean) => {
      if (synced) this.schedule(0)
      this.emit()
    })
  }

  get pending(): number {
    return this.local - this.confirmed
  }

  onChange(listener: (s: SaveState) => void): void {
    this.listeners.push(listener)
    listener(this.state())
  }

  /**
   * The interview ended (the `end` event, the status on load, or the server closing the editor
   * socket with 1008): from now on no edit is stored, so the indicator never says "Saved" again.
   */
  markEnded(): void {
    if (this.ended) return
    this.ended = true
    this.stop()
  }

  /** The link this page opened with was replaced: nothing more reaches the server. */
  markRevoked(): void {
    if (this.revoked) return
    this.revoked = true
    this.stop()
  }

  private stop(): void {
    if (this.timer !== null) { window.clearTimeout(this.timer); this.timer = null }
    this.probe = null
    this.emit()
  }

  state(): SaveState {
    const pending = this.pending
    if (this.ended) return { kind: 'ended', pending }
    if (this.revoked) return { kind: 'revoked', pending }
    if (!this.provider.wsconnected) return { kind: 'offline', pending }
    if (!this.provider.synced) return { kind: 'connecting', pending }
    if (pending > 0) {
      const slow = this.probe !== null && Date.now() - this.probe.sentAt > 3000
      return { kind: 'saving', pending, slow }
    }
    return { kind: 'saved', at: this.lastSavedAt }
  }

  private emit(): void {
    const s = this.state()
    for (const l of this.listeners) l(s)
  }

  private schedule(delay = 120): void {
    if (this.ended || this.revoked || this.timer !== null || this.probe !== null || this.pending <= 0) return
    this.timer = window.setTimeout(() => {
      this.timer = null
      this.sendProbe()
    }, delay)
  }

  private sendProbe(): void {
    const ws = this.provider.ws
    if (this.ended || this.revoked || this.probe || this.pending <= 0 || !ws || !this.provider.wsconnected || !this.provider.synced) return
    if (ws.readyState !== WebSocket.OPEN) return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, 0) // messageSync
    syncProtocol.writeSyncStep1(encoder, this.doc)
    this.probe = { upTo: this.local, ws, sentAt: Date.now() }
    ws.send(encoding.toUint8Array(encoder))
    if (this.slowTimer !== null) window.clearTimeout(this.slowTimer)
    this.slowTimer = window.setTimeout(() => this.emit(), 3100)
  }
}
