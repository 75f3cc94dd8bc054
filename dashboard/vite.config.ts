import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

/**
 * The admin dashboard: a Preact single-page app bundled into
 * dist/dashboard (served by src/features/dashboard/plugin.ts at /dashboard/).
 * Everything it runs is in the bundle: no CDN, no inline script (the CSP
 * allows script-src 'self' only).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/dashboard/',
  publicDir: false,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    // No inline module-preload polyfill: every script is a file from 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
})
