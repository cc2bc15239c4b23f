import { describe, expect, it } from 'vitest'
import en from './en'
import zhCN from './zh-CN'

function keys(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k))
}

describe('locales', () => {
  it('zh-CN and en have exactly the same messages', () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort())
  })
  it('every message has text in both languages', () => {
    for (const key of keys(zhCN)) {
      const text = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], zhCN)
      expect(typeof text === 'string' && text.length > 0, key).toBe(true)
    }
  })
})
