import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, URL } from 'node:url'
import tailwindcss from '@tailwindcss/vite'
import vue from '@vitejs/plugin-vue'
import type { Plugin } from 'vite'
import { defineConfig } from 'vitest/config'

// The API docs (/docs) load Swagger UI from the server itself, not a CDN: its files are copied
// from the locked npm package into the build (served at /docs-assets/).
const SWAGGER_FILES = ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png']
function swaggerAssets(): Plugin {
  return {
    name: 'swagger-ui-assets',
    apply: 'build',
    writeBundle(options) {
      const target = join(options.dir ?? '../backend/app/frontend', 'docs-assets')
      mkdirSync(target, { recursive: true })
      const source = fileURLToPath(new URL('./node_modules/swagger-ui-dist/', import.meta.url))
      for (const file of SWAGGER_FILES) copyFileSync(join(source, file), join(target, file))
    },
  }
}

const backend = process.env.BACKEND_URL ?? 'http://127.0.0.1:8000'

export default defineConfig({
  plugins: [vue(), tailwindcss(), swaggerAssets()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir: '../backend/app/frontend',
    emptyOutDir: true,
    chunkSizeWarningLimit: 700,
    rolldownOptions: {
      output: {
        // Vendor code shared by every area, split so chat and admin chunks stay small.
        codeSplitting: {
          groups: [
            { name: 'vendor-vue', test: /node_modules[\\/](vue|@vue|vue-router|pinia|vue-i18n|@intlify)[\\/]/ },
            { name: 'vendor-markdown', test: /node_modules[\\/](markdown-it|dompurify|highlight\.js|linkify-it|mdurl|uc\.micro|entities|punycode)[\\/]/ },
            { name: 'vendor-charts', test: /node_modules[\\/]chart\.js[\\/]/ },
          ],
        },
      },
    },
  },
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: false },
      '/v1': { target: backend, changeOrigin: false },
      '/healthz': backend,
      '/readyz': backend,
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.ts'],
  },
})
