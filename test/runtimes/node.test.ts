import { cliContract, node } from './contract.ts'

cliContract(node)
