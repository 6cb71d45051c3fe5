// After `vite build`: a brotli (.br) and a gzip (.gz) copy beside every text asset in dist/assets,
// which the server sends to browsers that take them (tower-http's ServeDir, precompressed). The
// editor's bundle goes out at about a third of its size, with no compression work per request.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, gzipSync, constants } from 'node:zlib'

const dir = new URL('../dist/assets/', import.meta.url).pathname
let files = 0
for (const name of readdirSync(dir)) {
  if (!/\.(js|css|svg|json|html|map)$/.test(name)) continue
  const body = readFileSync(join(dir, name))
  writeFileSync(join(dir, `${name}.br`), brotliCompressSync(body, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  }))
  writeFileSync(join(dir, `${name}.gz`), gzipSync(body, { level: 9 }))
  files += 1
}
console.log(`compress: .br and .gz beside ${files} assets`)
