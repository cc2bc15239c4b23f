// A confirmation dialog for destructive actions: `if (await confirm({...})) …`.
import { reactive } from 'vue'

export const confirmState = reactive({
  open: false,
  title: '',
  message: '',
  confirmLabel: '',
  danger: true,
})
let resolver: ((ok: boolean) => void) | null = null

export function confirm(options: { title: string; message: string; confirmLabel?: string; danger?: boolean }): Promise<boolean> {
  resolver?.(false)
  Object.assign(confirmState, { open: true, confirmLabel: '', danger: true, ...options })
  return new Promise((resolve) => {
    resolver = resolve
  })
}

export function settle(ok: boolean): void {
  confirmState.open = false
  resolver?.(ok)
  resolver = null
}
