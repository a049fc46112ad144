/**
 * Splits Docker's multiplexed attach stream (8-byte frame headers: stream type, 0, 0, 0,
 * big-endian length) into stdout and stderr chunks. Frames may span reads.
 */
export function createDemuxer(onData: (stream: 'stdout' | 'stderr', chunk: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4)
      if (pending.length < 8 + size) break
      const type = pending[0]
      const payload = pending.subarray(8, 8 + size)
      pending = pending.subarray(8 + size)
      // 1 is stdout, 2 stderr; 0 (stdin echo) does not occur without a TTY.
      if (type === 2) onData('stderr', payload)
      else onData('stdout', payload)
    }
  }
}
