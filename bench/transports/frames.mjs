// The 4-byte big-endian length framing of the wire protocol, for the JS cases that
// frame by hand (C and F).

export function encodeFrame(event) {
  const text = JSON.stringify({ type: event.type, detail: event.detail })
  const len = Buffer.byteLength(text)
  const frame = Buffer.allocUnsafe(4 + len)
  frame.writeUInt32BE(len, 0)
  frame.write(text, 4)
  return frame
}

/** Feeds chunks in, calls `onFrame(text)` (a Buffer with `binary`) for each complete frame. */
export class FrameReader {
  #pending = null
  #binary

  constructor(onFrame, { binary = false } = {}) {
    this.onFrame = onFrame
    this.#binary = binary
  }

  push(chunk) {
    const buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk])
    let at = 0
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at)
      if (buf.length - at - 4 < len) break
      this.onFrame(this.#binary ? buf.subarray(at + 4, at + 4 + len) : buf.toString('utf8', at + 4, at + 4 + len))
      at += 4 + len
    }
    this.#pending = at === buf.length ? null : buf.subarray(at)
  }
}
