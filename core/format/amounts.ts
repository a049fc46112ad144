/** A byte count as people read it: `812 B`, `4.1 kB`, `30.5 MB` (decimal units, as Docker prints them). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  const units = ['kB', 'MB', 'GB']
  let value = bytes / 1000
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/**
 * A pull's amounts: `2/3 layers, 12.1 MB/30.5 MB` (layers already on the machine count as done,
 * with no bytes); empty before the engine named any layer. The CLI's progress, Vite's terminal and
 * the panel all say it this way.
 */
export function formatPullAmounts(amounts: { layers: { done: number; total: number }; bytes: { current: number; total: number } }): string {
  if (!amounts.layers.total) return ''
  const layers = `${amounts.layers.done}/${amounts.layers.total} layer${amounts.layers.total === 1 ? '' : 's'}`
  return amounts.bytes.total ? `${layers}, ${formatBytes(amounts.bytes.current)}/${formatBytes(amounts.bytes.total)}` : layers
}
