// After `vite build`: Excalidraw's fonts beside the app, in dist/assets/excalidraw/fonts, where
// the board (board.ts, window.EXCALIDRAW_ASSET_PATH) loads them. Served by the server like every
// asset, so the page's Content-Security-Policy (fonts from this origin only) holds and no font
// is fetched from a CDN. The browser loads only the fonts a drawing uses.
import { cpSync, readdirSync } from 'node:fs'

const from = new URL('../node_modules/@excalidraw/excalidraw/dist/prod/fonts/', import.meta.url).pathname
const to = new URL('../dist/assets/excalidraw/fonts/', import.meta.url).pathname
cpSync(from, to, { recursive: true })
console.log(`board-assets: ${readdirSync(to).length} font families in dist/assets/excalidraw/fonts`)
