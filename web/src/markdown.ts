// Question prompts, rendered by a real Markdown implementation: markdown-it (CommonMark, with
// GFM tables) and no raw HTML passed through (`html: false` escapes it), then the HTML it made is
// sanitised by DOMPurify before it becomes DOM, so a prompt can never carry script, event
// handlers or `javascript:` links, even if markdown-it had a bug. Nothing here needs inline
// script or inline style, so the page's Content-Security-Policy is unchanged.
import MarkdownIt from 'markdown-it'
import DOMPurify from 'dompurify'
import { h } from './dom'

const md = new MarkdownIt('default', {
  html: false, // `<b>` in a prompt shows as text
  linkify: false,
  typographer: false, // quotes and dashes exactly as authors wrote them
  breaks: false,
})

/** The tags and attributes a prompt may produce: what CommonMark and GFM tables emit. */
const ALLOWED_TAGS = [
  'p', 'br', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'em', 'strong', 's', 'code', 'pre',
  'blockquote', 'ul', 'ol', 'li', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td',
]
const ALLOWED_ATTR = ['href', 'title', 'start', 'class', 'style'] // no images: the CSP loads none

/** Markdown to sanitised HTML (exported for tests of the renderer alone). */
export function markdownToHtml(source: string): string {
  return md.render(source)
}

export function renderMarkdown(source: string): HTMLElement {
  const root = h('div', { class: 'md' })
  const fragment = DOMPurify.sanitize(markdownToHtml(source), {
    ALLOWED_TAGS, ALLOWED_ATTR, RETURN_DOM_FRAGMENT: true,
  })
  // The room's headings are h1/h2; a prompt's `#` starts below them so the outline stays sound.
  for (const heading of Array.from(fragment.querySelectorAll('h1, h2, h3, h4, h5, h6'))) {
    const level = Math.min(6, Number(heading.tagName[1]) + 2)
    const replacement = document.createElement(`h${level}`)
    while (heading.firstChild) replacement.appendChild(heading.firstChild)
    heading.replaceWith(replacement)
  }
  for (const pre of Array.from(fragment.querySelectorAll('pre'))) pre.setAttribute('tabindex', '0')
  for (const table of Array.from(fragment.querySelectorAll('table'))) {
    // Wide tables scroll inside the panel rather than widen it; keyboard users can scroll too.
    const wrap = h('div', { class: 'md-table', tabindex: '0', role: 'region', 'aria-label': 'Table' })
    table.replaceWith(wrap)
    wrap.appendChild(table)
  }
  for (const a of Array.from(fragment.querySelectorAll('a'))) {
    a.setAttribute('rel', 'noopener noreferrer')
    a.setAttribute('target', '_blank')
  }
  // markdown-it aligns table cells with `style="text-align:…"`; keep only that.
  for (const el of Array.from(fragment.querySelectorAll('[style]'))) {
    const align = /^text-align:\s*(left|right|center)$/.exec(el.getAttribute('style') ?? '')
    if (align) el.setAttribute('style', `text-align: ${align[1]}`)
    else el.removeAttribute('style')
  }
  root.appendChild(fragment)
  return root
}
