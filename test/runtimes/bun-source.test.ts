import { bunSource, cliContract } from './contract.ts'

// `bun cli/bin.ts` runs the TypeScript sources directly.
cliContract(bunSource)
