/**
 * The raw argon2id rate of this machine, the ceiling of POST /login (issue 7): @node-rs/argon2's
 * verify() of a hash made with our parameters (the hash carries them), in a process of its own
 * with the same libuv thread pool as the server (UV_THREADPOOL_SIZE, 4 by default) and CONCURRENCY
 * verifications always in flight. No HTTP, no database: only hashing, so nothing else competes for
 * the cores.
 *
 * Run by bench/index.ts; prints one JSON line: { perSecond, p50, p99 (milliseconds), peakRssBytes }.
 * Environment: ARGON2_HASH, ARGON2_PASSWORD, CONCURRENCY, SECONDS, WARMUP_SECONDS.
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { verify } from '@node-rs/argon2'

const hash = process.env.ARGON2_HASH!
const password = process.env.ARGON2_PASSWORD!
const concurrency = Number(process.env.CONCURRENCY ?? 20)
const seconds = Number(process.env.SECONDS ?? 10)
const warmupSeconds = Number(process.env.WARMUP_SECONDS ?? 2)

if (!(await verify(hash, password))) throw new Error('ARGON2_PASSWORD does not match ARGON2_HASH')

/** Runs `concurrency` loops of verifications for `duration` ms; the latencies of those that finished. */
async function hammer(duration: number): Promise<number[]> {
  const end = performance.now() + duration
  const latencies: number[] = []
  const loop = async () => {
    while (performance.now() < end) {
      const started = performance.now()
      await verify(hash, password)
      latencies.push(performance.now() - started)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  return latencies
}

await hammer(warmupSeconds * 1000)
const started = performance.now()
const latencies = await hammer(seconds * 1000)
const elapsed = performance.now() - started
latencies.sort((a, b) => a - b)
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN
const peakRssBytes = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024
console.log(
  JSON.stringify({
    perSecond: (latencies.length * 1000) / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    peakRssBytes,
  }),
)
