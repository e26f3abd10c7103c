// Vite build of the anju console. `npm run build` writes ../build/console, which anju-server
// serves at "/". `npm run dev` serves with hot reload and proxies the API to a running
// anju-server ($ANJU_SERVER, default https://127.0.0.1:8640; its self-signed certificate is
// accepted because the proxy only talks to localhost).
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { fileURLToPath } from 'node:url'
import { precompress } from './precompress.mjs'

const server = process.env.ANJU_SERVER || 'https://127.0.0.1:8640'
const proxy = { target: server, changeOrigin: true, secure: false }

export default defineConfig({
  // Element Plus components (and their CSS) are imported where a page uses them, so the first
  // load (the login page) carries only what it shows.
  plugins: [vue(), Components({ resolvers: [ElementPlusResolver({ importStyle: 'css' })], dts: false }), precompress()],
  base: './',
  build: {
    outDir: fileURLToPath(new URL(process.env.ANJU_CONSOLE_OUT || '../build/console', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
  },
  server: { port: 5173, proxy: { '/api': proxy, '/healthz': proxy } },
})
