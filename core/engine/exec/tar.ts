import { ClnrmError } from '../../errors.ts'
/**
 * A tar archive holding one empty directory (`/tmp/x` → entry `tmp/x/`, mode 0777), for the
 * engine's archive API: it makes a directory in a container that has no `mkdir`.
 */
export function directoryTar(path: string): Buffer {
  const name = `${path.replace(/^\/+|\/+$/g, '')}/`
  if (Buffer.byteLength(name) > 100) throw new ClnrmError('CLNRM_PATH_TOO_LONG', `directory path too long for a tar entry: ${path}`, { hint: 'Use a `workdir` of at most 100 bytes in images without sh.' })
  const header = Buffer.alloc(512)
  const field = (offset: number, length: number, value: string): void => {
    header.write(value.slice(0, length), offset, 'latin1')
  }
  const octal = (value: number, length: number): string => `${value.toString(8).padStart(length - 1, '0')}\0`
  field(0, 100, name)
  field(100, 8, octal(0o777, 8))
  field(108, 8, octal(0, 8))
  field(116, 8, octal(0, 8))
  field(124, 12, octal(0, 12))
  field(136, 12, octal(Math.floor(Date.now() / 1000), 12))
  field(148, 8, '        ')
  field(156, 1, '5')
  field(257, 6, 'ustar\0')
  field(263, 2, '00')
  let sum = 0
  for (const byte of header) sum += byte
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `)
  return Buffer.concat([header, Buffer.alloc(1024)])
}
