/**
 * Progress of a long task on stderr: a bar redrawn in place on a terminal, a line every tenth
 * otherwise (CI logs), with the rate and the time left.
 */
export interface Progress {
  advance(done: number): void
  finish(): void
}

export function createProgress(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  const started = Date.now()
  const interactive = Boolean(stream.isTTY)
  let lastTenth = -1
  let lastDraw = 0
  let done = 0

  const line = () => {
    const elapsed = (Date.now() - started) / 1000
    const rate = elapsed > 0 ? done / elapsed : 0
    const left = rate > 0 ? (total - done) / rate : 0
    const fraction = total > 0 ? done / total : 1
    const bar = '#'.repeat(Math.round(fraction * 30)).padEnd(30, '-')
    return `${label} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${total}  ${Math.round(rate)}/s  ${left.toFixed(0)}s left`
  }

  return {
    advance(count) {
      done = Math.min(total, count)
      const now = Date.now()
      if (interactive) {
        if (now - lastDraw >= 100 || done === total) {
          stream.write(`\r${line()}`)
          lastDraw = now
        }
        return
      }
      const tenth = Math.floor((done / Math.max(total, 1)) * 10)
      if (tenth > lastTenth) {
        lastTenth = tenth
        stream.write(`${line()}\n`)
      }
    },
    finish() {
      done = total
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      stream.write(`${interactive ? '\r' : ''}${label}: ${total} in ${seconds}s${' '.repeat(40)}\n`)
    },
  }
}
