import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { invalidInput, type DomainError } from './errors.js'

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

/** What a page of a list is: its rows, and the cursor to the next page (null on the last). */
export interface Page<Row> {
  items: Row[]
  next_cursor: string | null
}

export interface KeysetPaging {
  /**
   * Where a page starts: undefined for the first page (no cursor), else the position the cursor
   * holds, read by `read` (undefined when it is not a position of this list: 422). A cursor made
   * for other filters (or another sort) is a 422 too: a cursor continues only its own list.
   */
  start<Position>(
    cursor: string | undefined,
    filters: unknown,
    read: (stored: Record<string, unknown>) => Position | undefined,
  ): Position | undefined
  /** The page out of the `limit + 1` rows read after its start, with the cursor to the next page. */
  page<Row>(
    rows: Row[],
    limit: number,
    filters: unknown,
    positionOf: (row: Row) => Record<string, string | number>,
  ): Page<Row>
}

/**
 * Keyset pagination, one way for every list: a page is the rows after a position in the list's
 * order, so a page deep in the list costs what the first does, and rows inserted meanwhile neither
 * repeat nor vanish. The cursor is that position, signed (see createCursorCodec), with a
 * fingerprint of the filters it was made for. `list` names the list, so that a cursor of one list
 * is refused by another.
 */
export function createKeysetPaging(secret: string, list: string): KeysetPaging {
  const cursors = createCursorCodec(`${secret}:${list}`)
  const fingerprint = (filters: unknown) =>
    createHash('sha256').update(JSON.stringify(filters)).digest('base64url').slice(0, 12)
  return {
    start(cursor, filters, read) {
      if (cursor === undefined) return undefined
      const { f, ...stored } = cursors.decode(cursor)
      if (f !== fingerprint(filters))
        throw invalidInput('This cursor belongs to a list with another sort or other filters.', [
          { in: 'query', field: 'cursor', message: 'does not match the sort and filters of this list' },
        ])
      const position = read(stored)
      if (position === undefined) throw invalidCursor()
      return position
    },
    page(rows, limit, filters, positionOf) {
      const items = rows.slice(0, limit)
      const last = items.at(-1)
      return {
        items,
        next_cursor:
          rows.length > limit && last
            ? cursors.encode({ f: fingerprint(filters), ...positionOf(last) })
            : null,
      }
    },
  }
}
