// Vite plugin: writes name.br and name.gz beside every compressible file of the build, so
// anju-server answers the console without compressing on each request (src/server/console_files.cpp).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const compressible = /\.(js|mjs|css|html|svg|json|txt|map)$/

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) yield* files(p)
    else yield p
  }
}

export function precompress() {
  let outDir
  return {
    name: 'anju-precompress',
    apply: 'build',
    configResolved(config) { outDir = config.build.outDir },
    closeBundle() {
      for (const file of files(outDir)) {
        if (!compressible.test(file)) continue
        const raw = readFileSync(file)
        if (raw.length < 1024) continue
        writeFileSync(`${file}.gz`, gzipSync(raw, { level: 9 }))
        writeFileSync(`${file}.br`, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
      }
    },
  }
}
