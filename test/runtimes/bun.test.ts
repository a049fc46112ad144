import { cliContract, devContract, bun } from './contract.ts'

cliContract(bun)
devContract(bun)
