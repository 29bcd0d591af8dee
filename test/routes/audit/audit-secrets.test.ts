/**
 * No secret of the audit trail tests ever reaches an audit row or the log. The trail is seeded
 * first with every kind of event (seedTrail), which keeps each password, token and hash it handles.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { describeEachEngine } from '../../support/app.js'
import { MAIL_ENV, auditTrail, logText, logger, seedTrail } from './support.js'

describeEachEngine(
  'audit trail: secrets',
  (ctx) => {
    const trail = auditTrail(ctx)
    const { secrets, allRows } = trail

    before(async () => seedTrail(trail))

    // -------------------------------------------------------------- no secrets

    test('no password, token or hash appears in any audit row, nor in the log', async () => {
      const rows = await allRows()
      assert.ok(rows.length > 40, `only ${rows.length} rows`)
      assert.ok(secrets.size > 40, `only ${secrets.size} secrets collected`)
      const stored = JSON.stringify(rows)
      const log = logText()
      for (const secret of secrets) {
        assert.equal(stored.includes(secret), false, `an audit row holds a secret (${secret.slice(0, 6)}…)`)
        assert.equal(log.includes(secret), false, `the log holds a secret (${secret.slice(0, 6)}…)`)
      }
    })
  },
  { env: MAIL_ENV, build: { logger } },
)
