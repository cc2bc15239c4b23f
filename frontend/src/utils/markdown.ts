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

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') node.setAttribute('rel', 'noopener noreferrer nofollow')
})

export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(md.render(text ?? ''), {
    ADD_ATTR: ['target', 'data-lang', 'data-display'],
    FORBID_TAGS: ['style', 'iframe', 'form', 'input', 'script'],
  })
}
