// Markdown from models, rendered safely: markdown-it (raw HTML off) → highlight.js → DOMPurify.
// Nothing a model writes can run script: HTML in the answer is text, and the result is sanitised.
import DOMPurify from 'dompurify'
import hljs from 'highlight.js/lib/common'
import MarkdownIt from 'markdown-it'
import { mathPlugin } from './math'

const md = new MarkdownIt({
  html: false,
  linkify: true,
  breaks: true,
  highlight(code, lang): string {
    const language = lang && hljs.getLanguage(lang) ? lang : ''
    const html = language ? hljs.highlight(code, { language, ignoreIllegals: true }).value : md.utils.escapeHtml(code)
    return `<pre class="hljs"><code data-lang="${md.utils.escapeHtml(language)}">${html}</code></pre>`
  },
})

md.use(mathPlugin)

// Links open in a new tab without giving it access to this one.
type Rule = NonNullable<typeof md.renderer.rules.link_open>
const defaultLink: Rule = md.renderer.rules.link_open ?? ((tokens, i, options, _env, self) => self.renderToken(tokens, i, options))
md.renderer.rules.link_open = ((tokens, i, options, env, self) => {
  tokens[i].attrSet('target', '_blank')
  tokens[i].attrSet('rel', 'noopener noreferrer nofollow')
  return defaultLink(tokens, i, options, env, self)
}) as Rule

// Images in an answer are not fetched: a prompt-injected answer could put data in an image's URL
// and the browser would send it away on render, with no click. A remote image becomes a link
// (opened only if the reader chooses); only `data:` images — nothing to fetch — are shown. The
// page's Content-Security-Policy (img-src 'self' data: blob:) backs this up.
const INLINE_IMAGE = /^data:image\/(png|jpe?g|gif|webp);base64,/i
md.renderer.rules.image = (tokens, i) => {
  const token = tokens[i]
  const src = String(token.attrGet('src') ?? '')
  const alt = String(token.content || token.attrGet('alt') || '')
  if (INLINE_IMAGE.test(src)) return `<img src="${md.utils.escapeHtml(src)}" alt="${md.utils.escapeHtml(alt)}">`
  let label = alt
  try {
    label ||= new URL(src).host
  } catch {
    label ||= src
  }
  return `<a href="${md.utils.escapeHtml(src)}" class="md-image-link" data-image="1" target="_blank" rel="noopener noreferrer nofollow">🖼 ${md.utils.escapeHtml(label)}</a>`
}

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') node.setAttribute('rel', 'noopener noreferrer nofollow')
  // Whatever the path to an <img>, only an inline one stays.
  if (node.tagName === 'IMG' && !INLINE_IMAGE.test(node.getAttribute('src') ?? '')) node.remove()
})

export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(md.render(text ?? ''), {
    ADD_ATTR: ['target', 'data-lang', 'data-display', 'data-image'],
    FORBID_TAGS: ['style', 'iframe', 'form', 'input', 'script'],
  })
}
