import { cliContract, bun } from './contract.ts'

cliContract(bun)
