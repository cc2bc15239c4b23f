import { describe, expect, it } from 'vitest'
import { createApp, defineComponent, h, nextTick } from 'vue'
import { installErrorReporting, reportApiError } from './errorReporting'
import { ApiError } from './http'

describe('failed requests nobody handled', () => {
  it('tell the user once, except an expired session (the client signs out)', () => {
    const told: string[] = []
    expect(reportApiError(new ApiError('Channel not found', 404, 'not_found'), (m) => told.push(m))).toBe(true)
    expect(reportApiError(new ApiError('Invalid or expired token', 401), (m) => told.push(m))).toBe(true)
    expect(reportApiError(new Error('a bug'), (m) => told.push(m))).toBe(false)
    expect(told).toEqual(['Channel not found'])
  })

  it('reach the report from a click handler that lets the error go', async () => {
    const told: string[] = []
    const Button = defineComponent({
      setup: () => () =>
        h('button', {
          onClick: async () => {
            throw new ApiError('The gateway is at capacity; retry shortly', 503, 'gateway_busy')
          },
        }),
    })
    const root = document.createElement('div')
    const app = createApp(Button)
    installErrorReporting(app, (m) => told.push(m))
    app.mount(root)
    root.querySelector('button')!.click()
    await nextTick()
    await new Promise((done) => setTimeout(done, 0))
    expect(told).toEqual(['The gateway is at capacity; retry shortly'])
    app.unmount()
  })
})
