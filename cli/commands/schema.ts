import { createJsonSchema } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { EXIT } from '../errors.ts'

/** `clnrm schema`: the editor schema of the format. */
export const schemaCommand: CommandDef = {
  name: 'schema',
  args: '',
  summary: 'Print the JSON Schema of *.clnrm.toml files, for editors (Taplo / Even Better TOML).',
  examples: ['clnrm schema > clnrm.schema.json'],
  options: {},
  async run(_args, ctx) {
    ctx.stdout(`${JSON.stringify(createJsonSchema(), null, 2)}\n`)
    return EXIT.ok
  },
}
