// A second reporter of `npm test` (scripts/run-tests.mjs): what was skipped and why. Node's own
// summary counts skipped tests only: a suite skipped whole (an engine without its URL) hides all
// of its tests from every count, so a run without database URLs said "skipped 0".
const plural = (count, word) => `${count} ${word}${count === 1 ? '' : 's'}`

export default async function* testSummary(source) {
  const skipped = { suite: new Map(), test: new Map() }
  for await (const event of source) {
    if (event.type !== 'test:pass' || event.data.skip === undefined || event.data.skip === false) continue
    const kind = event.data.details?.type === 'suite' ? 'suite' : 'test'
    const reason = typeof event.data.skip === 'string' ? event.data.skip : 'no reason given'
    skipped[kind].set(reason, (skipped[kind].get(reason) ?? 0) + 1)
  }
  const parts = ['suite', 'test']
    .map((kind) => {
      const reasons = skipped[kind]
      if (reasons.size === 0) return undefined
      const total = [...reasons.values()].reduce((sum, count) => sum + count, 0)
      const why = [...reasons].map(([reason, count]) => `${reason}: ${count}`).join('; ')
      return `${plural(total, kind)} (${why})`
    })
    .filter(Boolean)
  yield `\nskipped: ${parts.length === 0 ? 'nothing' : parts.join(', ')}\n`
}
