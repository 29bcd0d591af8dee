import { createHmac, timingSafeEqual } from 'node:crypto'
import { invalidInput, type DomainError } from './services/errors.js'

/**
 * Opaque, tamper-checked page cursors: base64url(JSON) + "." + a truncated HMAC. A client can
 * hand back only a cursor this server issued, so a cursor never becomes a query of its choosing.
 */
export interface CursorCodec {
  encode(position: Record<string, unknown>): string
  decode(cursor: string): Record<string, unknown>
}

/** 422 for a cursor that is not one this server issued (or no longer fits the query). */
export function invalidCursor(): DomainError {
  return invalidInput('The cursor is not valid: pass the next_cursor of a previous page unchanged.', [
    { in: 'query', field: 'cursor', message: 'is not a cursor this server issued' },
  ])
}

export function createCursorCodec(secret: string): CursorCodec {
  const key = createHmac('sha256', secret).update('pagination cursor').digest()
  const sign = (payload: string) => createHmac('sha256', key).update(payload).digest().subarray(0, 16)
  const invalid = invalidCursor

  return {
    encode(position) {
      const payload = Buffer.from(JSON.stringify(position)).toString('base64url')
      return `${payload}.${sign(payload).toString('base64url')}`
    },
    decode(cursor) {
      const [payload, signature, extra] = cursor.split('.')
      if (!payload || !signature || extra !== undefined) throw invalid()
      const expected = sign(payload)
      const given = Buffer.from(signature, 'base64url')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid()
      try {
        const value: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid()
        return value as Record<string, unknown>
      } catch {
        throw invalid()
      }
    },
  }
}
