import { defineConfig } from 'vite'
import { clnrm } from 'clnrm/vite'

export default defineConfig({
  plugins: [clnrm({ tests: 'tests/**/*.clnrm.toml{,.eta}' })],
})
