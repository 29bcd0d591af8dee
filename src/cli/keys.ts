import type { SigningKeys, SigningKeyView } from '../services/signing-keys.js'
import { DomainError } from '../services/errors.js'

/** One line per key: what `keys list` prints. */
export function keyLine(key: SigningKeyView): string {
  const dates = [
    `published ${key.created_at.toISOString()}`,
    `signs from ${key.activates_at.toISOString()}`,
    key.retires_at ? `verifies until ${key.retires_at.toISOString()}` : undefined,
  ].filter(Boolean)
  return `${String(key.generation).padStart(3)}  ${key.state.padEnd(8)}  ${key.algorithm.padEnd(6)}  ${key.kid}  ${dates.join(', ')}`
}

/**
 * `keys list` and `keys rotate`. Answers the lines to print; a refusal (an HS algorithm, a key
 * already waiting) is a DomainError whose detail is the one line to show.
 */
export async function keysCommand(keys: SigningKeys, action: string | undefined): Promise<string[]> {
  if (action === 'list' || action === undefined) {
    if (keys.source === 'secret')
      return ['JWT_ALGORITHM is an HS algorithm: tokens are signed with SECRET_KEY, and no key is stored.']
    return (await keys.list()).map(keyLine)
  }
  if (action === 'rotate') {
    const next = await keys.rotate()
    return [
      keyLine(next),
      `Key ${next.kid} is published now and signs from ${next.activates_at.toISOString()}; the current key verifies until ${(await keys.list()).find((key) => key.state === 'current')?.retires_at?.toISOString() ?? 'its tokens expire'}.`,
    ]
  }
  throw new DomainError('bad_request', `unknown keys action "${action}" (list or rotate)`)
}
