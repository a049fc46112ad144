import { cliContract, deno } from './contract.ts'

cliContract(deno)
