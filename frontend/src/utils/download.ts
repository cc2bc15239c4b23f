// Downloads that need the bearer token (a plain link cannot send it).
import { authHeader, fromBody } from '@/api/http'

export async function downloadWithAuth(path: string, fallbackName: string): Promise<void> {
  const response = await fetch(path, { headers: authHeader() })
  if (!response.ok) {
    let body: unknown = null
    try {
      body = await response.json()
    } catch {
      body = null
    }
    throw fromBody(response.status, body)
  }
  const disposition = response.headers.get('content-disposition') ?? ''
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition)
  const plain = /filename="?([^";]+)"?/i.exec(disposition)
  const name = utf8 ? decodeURIComponent(utf8[1]) : (plain?.[1] ?? fallbackName)
  const url = URL.createObjectURL(await response.blob())
  const link = document.createElement('a')
  link.href = url
  link.download = name
  document.body.appendChild(link)
  link.click()
  link.remove()
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
