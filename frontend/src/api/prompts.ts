import { client, unwrap } from './http'
import type { Schemas } from './types'

export const promptsApi = {
  list: () => unwrap(client.GET('/api/prompts')),
  create: (body: Schemas['PromptCreate']) => unwrap(client.POST('/api/prompts', { body })),
  update: (id: number, body: Schemas['PromptUpdate']) =>
    unwrap(client.PATCH('/api/prompts/{prompt_id}', { params: { path: { prompt_id: id } }, body })),
  remove: (id: number) => unwrap(client.DELETE('/api/prompts/{prompt_id}', { params: { path: { prompt_id: id } } })),
}
