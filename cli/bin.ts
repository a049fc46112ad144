#!/usr/bin/env node
import { runMain } from './index.ts'

await runMain()
