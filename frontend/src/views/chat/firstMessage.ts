// The first message of a new chat, handed from the "new chat" view to the conversation's own
// view (which is a fresh instance once the URL names the conversation).
const pending = new Map<number, string>()

export function handOverFirstMessage(conversationId: number, content: string): void {
  pending.set(conversationId, content)
}

export function takeFirstMessage(conversationId: number): string | undefined {
  const content = pending.get(conversationId)
  pending.delete(conversationId)
  return content
}
