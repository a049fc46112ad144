/** Options of the clnrm Vite plugin. */
export interface ClnrmPluginOptions {
  /** Globs of test files, relative to the Vite root. @default 'tests/**\/*.clnrm.toml{,.eta}' */
  tests?: string | string[]
}
