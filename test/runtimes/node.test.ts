import { cliContract, devContract, node } from './contract.ts'

cliContract(node)
devContract(node)
