// Program output, decoded once and the same way whether it arrives live on the events socket or
// comes back in a run's record after a reload: per run and stream, one streaming UTF-8 decoder
// over the bytes the program wrote. The server never decodes output; it sends text when the bytes
// are UTF-8 that JSON carries at about their size and base64 otherwise (so a character split
// across two writes, NUL bytes or invalid UTF-8 read exactly as they would from the record).

export interface Chunk {
  data?: string | null
  base64?: string | null
}

const encoder = new TextEncoder()

/** The bytes a chunk holds. */
export function bytesOf(chunk: Chunk): Uint8Array {
  if (typeof chunk.data === 'string') return encoder.encode(chunk.data)
  const raw = atob(chunk.base64 ?? '')
  const bytes = new Uint8Array(raw.length)
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i)
  return bytes
}

/** Streaming decoders, one per run and stream. */
export class OutputText {
  private decoders = new Map<string, TextDecoder>()

  /** The text of `chunk`, continuing what came before it on this run's stream. */
  push(runId: string, stream: string, chunk: Chunk): string {
    const key = `${runId}\u0000${stream}`
    let decoder = this.decoders.get(key)
    if (!decoder) {
      decoder = new TextDecoder('utf-8', { fatal: false })
      this.decoders.set(key, decoder)
    }
    return decoder.decode(bytesOf(chunk), { stream: true })
  }

  /** What is left of the run's streams once it ended (a character cut short reads as U+FFFD). */
  finish(runId: string): { stream: string; text: string }[] {
    const rest: { stream: string; text: string }[] = []
    for (const [key, decoder] of [...this.decoders]) {
      const [id, stream] = key.split('\u0000')
      if (id !== runId) continue
      const text = decoder.decode()
      if (text) rest.push({ stream, text })
      this.decoders.delete(key)
    }
    return rest
  }
}
