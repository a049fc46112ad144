/**
 * Passes a stream's bytes to a sink while picking out the runner's control lines,
 * `\n@@clnrm:<nonce>:<token>\n`, which never reach the sink. A possible partial marker at
 * the end of a chunk is held back until the next chunk decides it.
 */
export class MarkerScanner {
  readonly #prefix: Buffer
  readonly #sink: (chunk: Buffer) => void
  readonly #onToken: (token: string) => void
  #held: Buffer = Buffer.alloc(0)

  constructor(nonce: string, sink: (chunk: Buffer) => void, onToken: (token: string) => void) {
    this.#prefix = Buffer.from(`\n@@clnrm:${nonce}:`)
    this.#sink = sink
    this.#onToken = onToken
  }

  feed(chunk: Buffer): void {
    let data: Buffer = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk
    this.#held = Buffer.alloc(0)
    for (;;) {
      const at = data.indexOf(this.#prefix)
      if (at === -1) break
      const end = data.indexOf(0x0A, at + this.#prefix.length)
      if (end === -1) {
        // The marker has started but its line has not ended: wait for more.
        this.#sink(data.subarray(0, at))
        this.#held = data.subarray(at)
        return
      }
      this.#sink(data.subarray(0, at))
      this.#onToken(data.subarray(at + this.#prefix.length, end).toString('latin1'))
      data = data.subarray(end + 1)
    }
    // Keep back a tail that could be the start of a marker split across reads.
    const keep = partialPrefixLength(data, this.#prefix)
    this.#sink(data.subarray(0, data.length - keep))
    this.#held = data.subarray(data.length - keep)
  }

}

/** Length of the longest suffix of `data` that is a prefix of `prefix`. */
function partialPrefixLength(data: Buffer, prefix: Buffer): number {
  const max = Math.min(data.length, prefix.length - 1)
  for (let len = max; len > 0; len--) {
    if (data.subarray(data.length - len).equals(prefix.subarray(0, len))) return len
  }
  return 0
}
