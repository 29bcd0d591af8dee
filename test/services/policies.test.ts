/** Who may do what, as the policies say it: each combination of role and ownership. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ProductRecord } from '../../src/repositories/products.js'
import { canManageUser, canModifyProduct } from '../../src/services/policies.js'

const owned = (ownerId: number | null) => ({ owner_id: ownerId }) as ProductRecord

test('a product may be changed by its owner and by any admin, by nobody else', () => {
  assert.equal(canModifyProduct({ id: 7, role: 'user' }, owned(7)), true)
  assert.equal(canModifyProduct({ id: 8, role: 'user' }, owned(7)), false)
  assert.equal(canModifyProduct({ id: 8, role: 'admin' }, owned(7)), true)
})

test('a product whose owner was deleted may be changed by an admin only', () => {
  assert.equal(canModifyProduct({ id: 7, role: 'user' }, owned(null)), false)
  assert.equal(canModifyProduct({ id: 7, role: 'admin' }, owned(null)), true)
})

test('an account may be managed by the user themself and by any admin, by nobody else', () => {
  assert.equal(canManageUser({ id: 7, role: 'user' }, 7), true)
  assert.equal(canManageUser({ id: 8, role: 'user' }, 7), false)
  assert.equal(canManageUser({ id: 8, role: 'admin' }, 7), true)
})
