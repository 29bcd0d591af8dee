/**
 * Several instances, one system: killing one of two real server processes under load leaves the
 * other serving without a single failed request, and the sessions started on the killed one go
 * on through the survivor.
 */
import assert from 'node:assert/strict'
import { before, describe, test, type TestContext } from 'node:test'
import { uniqueSku } from '../support/app.js'
import { until } from '../support/processes.js'
import {
  describeEachDeployment,
  expectAccepted,
  loginOn,
  newClient,
  registerOn,
  send,
  showingServerOutput,
  startPair,
  type Instance,
} from './instances-support.js'

describeEachDeployment(({ keyPrefix, sharedEnv }) => {
  describe('one instance killed under load', () => {
    let c: Instance
    let d: Instance

    before(
      showingServerOutput(async () => {
        // A pair of their own with the default attempt limits and a per-client limit the load
        // cannot reach (the load comes from one client), so that every refusal would be a fault.
        ;[c, d] = await startPair(['C', 'D'], {
          ...sharedEnv(),
          REDIS_KEY_PREFIX: `${keyPrefix}load:`,
          RATE_LIMIT_PER_MINUTE: '1000000',
        })
      }),
    )

    test(
      'SIGKILL on D mid-load: every request to C succeeds, and D fails only by connection errors',
      showingServerOutput(async (t: TestContext) => {
        const client = newClient()
        const user = await registerOn(c, client)
        const { access_token: token } = await loginOn(d, client, user)

        interface Tally {
          ok: { before: number; after: number }
          /** Answers other than 2xx: there must be none. */
          refused: string[]
          /** Requests that got no answer, with their error code. */
          failed: { phase: 'before' | 'after'; code: string }[]
        }
        const tally = (): Tally => ({ ok: { before: 0, after: 0 }, refused: [], failed: [] })
        const onC = tally()
        const onD = tally()
        let killed = false
        let stop = false

        /** One request of a mix: an authenticated read, a write, a list. */
        async function oneRequest(instance: Instance, turn: number) {
          switch (turn % 3) {
            case 0:
              return send(instance, 'GET', '/current-user', { client, token })
            case 1:
              return send(instance, 'POST', '/product/', {
                client,
                token,
                json: { product_id: uniqueSku(), name: `Load on ${instance.name}`, price: turn },
              })
            default:
              return send(instance, 'GET', `/product/?owner_id=${user.id}&limit=5`, { client, token })
          }
        }

        /** One client's loop: sends its next request as soon as the last one is answered. */
        async function worker(instance: Instance, counts: Tally, offset: number) {
          for (let turn = offset; !stop; turn += 1) {
            // Answers count for the phase their request was sent in; failures for the phase they
            // arrive in (a request in flight when D is killed fails after the kill).
            const sentAfterKill = killed
            try {
              const answer = await oneRequest(instance, turn)
              if (answer.status >= 200 && answer.status < 300)
                counts.ok[sentAfterKill ? 'after' : 'before'] += 1
              else counts.refused.push(`${answer.status} ${JSON.stringify(answer.body)}`)
            } catch (error) {
              const cause = (error as { cause?: { code?: string } }).cause
              const phase = killed ? 'after' : 'before'
              counts.failed.push({ phase, code: cause?.code ?? (error as Error).name })
              // A balancer takes a failing instance out: this connection stops sending to it.
              if (instance === d) return
            }
          }
        }

        /** Concurrent connections per instance, and the answers each instance must give first. */
        const WORKERS = 4
        const BEFORE = 100
        const AFTER = 300
        const running = [c, d].flatMap((instance) =>
          Array.from({ length: WORKERS }, (_, index) => worker(instance, instance === c ? onC : onD, index)),
        )
        try {
          // A fault ends the waiting at once: the assertions below then say what it was.
          const fault = () =>
            onC.failed.length + onC.refused.length + onD.refused.length > 0 ||
            onD.failed.some((failure) => failure.phase === 'before')
          await until(
            () => fault() || (onC.ok.before >= BEFORE && onD.ok.before >= BEFORE),
            'both instances serve the load',
            60_000,
          )
          killed = true
          d.child.kill('SIGKILL')
          assert.deepEqual(await d.exited, { code: null, signal: 'SIGKILL' })
          await until(
            () => fault() || (onC.ok.after >= AFTER && onD.failed.length >= WORKERS),
            'C serves on after the kill, and every connection to D has failed',
            60_000,
          )
        } finally {
          stop = true
          await Promise.all(running)
        }

        t.diagnostic(
          `C answered ${onC.ok.before} + ${onC.ok.after} requests (before + after the kill); D answered ` +
            `${onD.ok.before + onD.ok.after}, then failed with ${onD.failed.map((failure) => failure.code).join(', ')}`,
        )
        // The survivor: not one failed request, not one refusal, before or after the kill.
        assert.deepEqual(onC.failed, [], 'requests to C without an answer')
        assert.deepEqual(onC.refused, [], 'answers from C other than 2xx')
        assert.ok(onC.ok.after >= AFTER, `C answered ${onC.ok.after} requests after the kill`)
        // The killed one: answers until the kill, then connection errors only (whether the request
        // was in flight or sent after).
        assert.deepEqual(onD.refused, [], 'answers from D other than 2xx')
        assert.ok(onD.ok.before >= BEFORE)
        assert.ok(onD.failed.length >= WORKERS)
        for (const failure of onD.failed) {
          assert.equal(failure.phase, 'after', `D failed before it was killed: ${failure.code}`)
          assert.ok(
            ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(
              failure.code,
            ),
            `not a connection error: ${failure.code}`,
          )
        }

        // The session that started on D goes on through C alone.
        await expectAccepted(c, client, token, user.id, 'the token from D, on C after the kill')
      }),
    )
  })
})
