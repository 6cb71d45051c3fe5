// Builds the app into dist/, which `duet serve --web-dir` serves. Hashed file names under
// assets/ let the server cache them for long; index.html has no inline script (the server's
// Content-Security-Policy refuses inline script), and the pages load as separate chunks so the
// candidate's page never loads the interviewer's code.
import { defineConfig } from 'vite'

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    rollupOptions: {
      output: {
        // The editor and Yjs libraries in one shared chunk, the Markdown renderer and its
        // sanitiser in another, each named for what it holds.
        manualChunks: (id) => {
          if (!id.includes('node_modules')) return undefined
          if (/node_modules\/(markdown-it|mdurl|uc\.micro|linkify-it|punycode(?:\.js)?|entities|dompurify)\//.test(id)) return 'markdown'
          if (/node_modules\/(@codemirror|@lezer|@marijn|yjs|y-codemirror\.next|y-protocols|y-websocket|lib0|style-mod|w3c-keyname|crelt)\//.test(id)) return 'editor'
          // The rest (the board's Excalidraw and React) goes where Rollup puts it: with board.ts,
          // which only a dynamic import loads, and Excalidraw's own lazy parts (locales, the
          // diagram-from-text dialog) in chunks of their own.
          return undefined
        },
      },
    },
  },
  server: { port: 5173, strictPort: true },
})
