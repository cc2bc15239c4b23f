// LaTeX in answers: $…$ and \(…\) inline, $$…$$ and \[…\] displayed. The Markdown parser keeps
// each formula as raw text in a <span class="math"> (before its backslash escapes could eat
// `\,` or `\(`); KaTeX, loaded only when an answer has a formula, typesets those spans after.
import type { StateInline, Token } from 'markdown-it'

type Md = InstanceType<typeof import('markdown-it').default>

const PAIRS: [string, string, boolean][] = [
  ['$$', '$$', true],
  ['\\[', '\\]', true],
  ['\\(', '\\)', false],
  ['$', '$', false],
]

function mathRule(state: StateInline, silent: boolean): boolean {
  const src = state.src
  for (const [open, close, display] of PAIRS) {
    if (!src.startsWith(open, state.pos)) continue
    const start = state.pos + open.length
    const end = src.indexOf(close, start)
    if (end <= start) continue
    const tex = src.slice(start, end)
    if (open === '$') {
      // "$5 and $6" is money, not math: no space just inside the dollars, no digit after.
      if (/^\s|\s$/.test(tex) || /[\n`]/.test(tex) || /\w/.test(src[end + 1] ?? '')) continue
    }
    if (!silent) {
      const token = state.push('math', 'span', 0)
      token.content = tex
      token.meta = { display }
    }
    state.pos = end + close.length
    return true
  }
  return false
}

export function mathPlugin(md: Md): void {
  md.inline.ruler.before('escape', 'math', mathRule)
  md.renderer.rules.math = (tokens: Token[], index: number) => {
    const token = tokens[index]
    return `<span class="math" data-display="${token.meta?.display ? '1' : '0'}">${md.utils.escapeHtml(token.content)}</span>`
  }
}

export function hasMath(element: HTMLElement): boolean {
  return element.querySelector('span.math:not([data-done])') !== null
}

export async function typesetMath(element: HTMLElement): Promise<void> {
  const spans = [...element.querySelectorAll<HTMLElement>('span.math:not([data-done])')]
  if (!spans.length) return
  const [{ default: katex }] = await Promise.all([import('katex'), import('katex/dist/katex.min.css')])
  for (const span of spans) {
    const tex = span.textContent ?? ''
    katex.render(tex, span, { displayMode: span.dataset.display === '1', throwOnError: false, trust: false, strict: 'ignore' })
    span.dataset.done = '1'
  }
}
