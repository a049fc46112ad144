import { cliContract, devContract, deno } from './contract.ts'

cliContract(deno)
devContract(deno)
