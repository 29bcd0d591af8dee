/** The client key of an address, case by case: what IPv4-mapped means, and the /64 of every IPv6 form. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientKey } from '../../src/rate-limit/client-key.js'

test('IPv4-mapped: only the exact ::ffff:a.b.c.d form with a valid IPv4 address is that address', () => {
  assert.equal(clientKey('::ffff:192.168.100.200'), '192.168.100.200', 'multi-digit parts')
  assert.equal(clientKey('::ffff:1.2.3.4junk'), '::ffff:1.2.3.4junk', 'not an address: as is')
  assert.equal(clientKey('::ffff:999.1.1.1'), '::ffff:999.1.1.1', 'not a valid IPv4 address: as is')
  assert.equal(
    clientKey('2001:db8::ffff:192.0.2.1'),
    '2001:db8:0:0::/64',
    'not at the start: an IPv6 address',
  )
})

test('IPv6 by its /64, whatever the form: compressed at the start, the middle or the end, or with an IPv4 tail', () => {
  assert.equal(clientKey('::1'), '0:0:0:0::/64')
  assert.equal(clientKey('::'), '0:0:0:0::/64')
  assert.equal(clientKey('2001:db8::1:2:3:4:5'), '2001:db8:0:1::/64', 'the zeros go in the middle')
  assert.equal(clientKey('2001:db8::1:2:3:192.0.2.1'), '2001:db8:0:1::/64', 'an IPv4 tail is two groups')
  assert.equal(clientKey('2001:DB8:A::1'), '2001:db8:a:0::/64', 'any case')
  assert.equal(clientKey('fe80::1%ETH0'), 'fe80:0:0:0::/64', 'a zone is dropped')
})

test('IPv4 and non-addresses are their own key', () => {
  assert.equal(clientKey('203.0.113.9'), '203.0.113.9')
  assert.equal(clientKey(''), '')
  assert.equal(clientKey('not an address'), 'not an address')
})
