/**
 * Page cursors on their own: only a cursor this server signed, for this list, in its exact form,
 * holding a JSON object, is read; anything else is the same 422, word for word. The route tests
 * show a client's tampering refused; these show what a signed but malformed cursor would do, which
 * only the holder of the secret could send.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import { DomainError } from '../../src/services/errors.js'
import { createCursorCodec, createKeysetPaging } from '../../src/services/pagination.js'

const SECRET = 'a secret of the test, long enough to be one'
const codec = createCursorCodec(SECRET)

/** A cursor with this payload, signed as the codec signs (so only the payload can be wrong). */
function signed(payload: string): string {
  const key = createHmac('sha256', SECRET).update('pagination cursor').digest()
  const body = Buffer.from(payload).toString('base64url')
  return `${body}.${createHmac('sha256', key).update(body).digest().subarray(0, 16).toString('base64url')}`
}

function assertNotIssued(action: () => unknown, label: string) {
  assert.throws(
    action,
    (error: unknown) => {
      assert.ok(error instanceof DomainError, `${label}: ${String(error)}`)
      assert.equal(error.kind, 'invalid_input', label)
      assert.equal(
        error.detail,
        'The cursor is not valid: pass the next_cursor of a previous page unchanged.',
        label,
      )
      assert.deepEqual(
        error.facts.issues,
        [{ in: 'query', field: 'cursor', message: 'is not a cursor this server issued' }],
        label,
      )
      return true
    },
    label,
  )
}

test('a cursor round-trips its position, and the signing matches its documented form', () => {
  const cursor = codec.encode({ i: 42, v: 'name' })
  assert.deepEqual(codec.decode(cursor), { i: 42, v: 'name' })
  assert.equal(cursor, signed('{"i":42,"v":"name"}'))
})

test('a cursor in any other shape than payload.signature is not one the server issued', () => {
  const cursor = codec.encode({ i: 1 })
  const [payload, signature] = cursor.split('.') as [string, string]
  const shapes: [string, string][] = [
    ['', 'empty'],
    [payload, 'no signature'],
    [`${payload}.`, 'an empty signature'],
    [`.${signature}`, 'an empty payload'],
    [`${cursor}.`, 'a third, empty part'],
    [`${cursor}.${signature}`, 'a third part'],
  ]
  for (const [shape, label] of shapes) assertNotIssued(() => codec.decode(shape), label)
})

test('a signed payload that is not a JSON object is not one the server issued', () => {
  for (const payload of ['[1,2]', 'null', '7', '"text"', 'true', '{"i":', 'not json'])
    assertNotIssued(() => codec.decode(signed(payload)), payload)
  assert.deepEqual(codec.decode(signed('{}')), {})
})

test('a cursor signed with another secret is not one the server issued', () => {
  assertNotIssued(() => codec.decode(createCursorCodec(`${SECRET}!`).encode({ i: 1 })), 'another secret')
})

test('a cursor of one list is refused by another list, even for the same filters and position', () => {
  const filters = { sort: 'name' }
  const users = createKeysetPaging(SECRET, 'users')
  const products = createKeysetPaging(SECRET, 'products')
  const cursor = users.page([{ id: 1 }, { id: 2 }], 1, filters, (row) => ({ i: row.id })).next_cursor!
  assert.deepEqual(
    users.start(cursor, filters, (stored) => stored),
    { i: 1 },
  )
  assertNotIssued(() => products.start(cursor, filters, (stored) => stored), 'another list')
})

test('a cursor made for other filters: 422 saying it belongs to another list, word for word', () => {
  const paging = createKeysetPaging(SECRET, 'products')
  const cursor = paging.page([{ id: 1 }, { id: 2 }], 1, { sort: 'name' }, (row) => ({
    i: row.id,
  })).next_cursor!
  assert.throws(
    () => paging.start(cursor, { sort: '-name' }, (stored) => stored),
    (error: unknown) => {
      assert.ok(error instanceof DomainError)
      assert.equal(error.detail, 'This cursor belongs to a list with another sort or other filters.')
      assert.deepEqual(error.facts.issues, [
        { in: 'query', field: 'cursor', message: 'does not match the sort and filters of this list' },
      ])
      return true
    },
  )
})

test('a signed cursor whose position the list cannot read is not one the server issued', () => {
  const paging = createKeysetPaging(SECRET, 'products')
  const cursor = paging.page([{ id: 1 }, { id: 2 }], 1, {}, (row) => ({ i: row.id })).next_cursor!
  assertNotIssued(() => paging.start(cursor, {}, () => undefined), 'an unreadable position')
})

test('the last page has no next cursor; a page with more rows after it has one', () => {
  const paging = createKeysetPaging(SECRET, 'products')
  const position = (row: { id: number }) => ({ i: row.id })
  assert.equal(paging.page([{ id: 1 }, { id: 2 }], 2, {}, position).next_cursor, null)
  assert.equal(paging.page([], 2, {}, position).next_cursor, null)
  const page = paging.page([{ id: 1 }, { id: 2 }, { id: 3 }], 2, {}, position)
  assert.deepEqual(page.items, [{ id: 1 }, { id: 2 }])
  assert.deepEqual(
    paging.start(page.next_cursor!, {}, (stored) => stored),
    { i: 2 },
  )
})
