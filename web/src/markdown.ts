// A small Markdown subset (headings, paragraphs, lists, fenced and inline code, bold) turned
// into DOM nodes directly: no HTML is parsed, so a prompt cannot carry markup or script.
import { h } from './dom'

function inline(text: string): (Node | string)[] {
  const out: (Node | string)[] = []
  const re = /(`[^`]+`|\*\*[^*]+\*\*)/g
  let last = 0
  for (const m of text.matchAll(re)) {
    if (m.index! > last) out.push(text.slice(last, m.index))
    const token = m[0]
    out.push(token.startsWith('`') ? h('code', {}, token.slice(1, -1)) : h('strong', {}, token.slice(2, -2)))
    last = m.index! + token.length
  }
  if (last < text.length) out.push(text.slice(last))
  return out
}

export function renderMarkdown(source: string): HTMLElement {
  const root = h('div', { class: 'md' })
  const lines = source.replace(/\r\n/g, '\n').split('\n')
  let i = 0
  let para: string[] = []
  let list: HTMLElement | null = null
  const flush = () => {
    if (para.length) root.appendChild(h('p', {}, inline(para.join(' '))))
    para = []
  }
  while (i < lines.length) {
    const line = lines[i]
    if (line.startsWith('```')) {
      flush(); list = null
      const body: string[] = []
      i += 1
      while (i < lines.length && !lines[i].startsWith('```')) { body.push(lines[i]); i += 1 }
      root.appendChild(h('pre', { tabindex: '0' }, h('code', {}, body.join('\n'))))
      i += 1
      continue
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line)
    const item = /^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(line)
    if (heading) {
      flush(); list = null
      const level = Math.min(6, heading[1].length + 2) as 3 | 4 | 5 | 6
      root.appendChild(h(`h${level}` as 'h3', {}, inline(heading[2])))
    } else if (item) {
      flush()
      if (!list) { list = h('ul', {}); root.appendChild(list) }
      list.appendChild(h('li', {}, inline(item[1])))
    } else if (!line.trim()) {
      flush(); list = null
    } else if (list && /^\s{2,}/.test(line)) {
      list.lastElementChild?.append(' ', ...inline(line.trim()))
    } else {
      list = null
      para.push(line.trim())
    }
    i += 1
  }
  flush()
  return root
}
