/**
 * README.md's walk-through, executed from README.md itself: every shell block from "Walk-through"
 * to "Routes", in order, in one bash (as one terminal would run them), against a fresh development
 * server started as a newcomer starts it (no variables; its log kept in server.log, as the
 * recovery section says). Each `# → …` comment is a claim checked against what the commands
 * before it printed: the status (`curl -i`), the headers it names, or the exact output.
 * Only the server's address is substituted (the test's server listens on a free port).
 */
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseRawResponse } from '../http/support.js'
import { killServers, startServerProcess } from '../support/server-process.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const README_ADDRESS = 'http://127.0.0.1:8000'

const folders: string[] = []
after(async () => {
  await killServers()
  for (const folder of folders) rmSync(folder, { recursive: true, force: true })
})

/** A run of command lines and the `#` comment lines after it; `claim` is what a `# →` comment says. */
interface Step {
  block: number
  commands: string
  claim?: string
}

/** The ```bash blocks between two headings of README.md. */
function shellBlocks(readme: string, from: string, to: string): string[] {
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to))
  assert.ok(section.length > 0, `README.md has "${from}" before "${to}"`)
  return [...section.matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((match) => match[1]!)
}

/**
 * A block's steps: a step is the command lines up to the next comment or blank line (a line
 * ending in `\`, or inside an open quote, goes on), with the claim of the comments that follow.
 */
function stepsOf(block: string, index: number): Step[] {
  const steps: Step[] = []
  let commands: string[] = []
  let comments: string[] = []
  const flush = () => {
    // Comments before any command (a heading like "# 1. Register") claim nothing.
    if (commands.length === 0) {
      comments = []
      return
    }
    const arrow = comments.find((line) => line.startsWith('→ '))
    steps.push({ block: index, commands: commands.join('\n'), claim: arrow?.slice(2).trim() })
    commands = []
    comments = []
  }
  let open = false
  for (const line of block.split('\n')) {
    const comment = /^#\s?(.*)$/.exec(line)
    if (!open && comment) {
      comments.push(comment[1]!)
      continue
    }
    if (!open && line.trim() === '') {
      flush()
      continue
    }
    if (comments.length > 0) flush()
    commands.push(line)
    // An odd number of single quotes leaves a quote open (the totp helper spans two lines).
    if ((line.match(/'/g)?.length ?? 0) % 2 === 1) open = !open
  }
  flush()
  return steps
}

interface Claim {
  status?: number
  headers: [string, string][]
  output?: string
}

/** `201, Location: /users/1, ETag: "1" {…}` → the status and the headers; anything else: the output. */
function parseClaim(claim: string): Claim {
  const status = /^(\d{3})\b/.exec(claim)
  if (!status) return { headers: [], output: claim }
  const headers: [string, string][] = []
  for (const match of claim.matchAll(/, ([A-Z][A-Za-z-]+): (.+?)(?=, [A-Z][A-Za-z-]+: |\s+\{|$)/g))
    headers.push([match[1]!.toLowerCase(), match[2]!.trim()])
  return { status: Number(status[1]), headers }
}

/** A claimed header value: `…` stands for anything. */
const valuePattern = (value: string) =>
  new RegExp(
    `^${value
      .split('…')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )

function checkClaim(step: Step, output: string) {
  const claim = parseClaim(step.claim!)
  const where = `README block ${step.block + 1}:\n${step.commands}\nclaims → ${step.claim}\nprinted:\n${output}`
  if (claim.output !== undefined) {
    assert.equal(output.trim(), claim.output, where)
    return
  }
  // The last response the step printed (curl -i): its status line and headers.
  const responses = output.split(/^(?=HTTP\/[\d.]+ \d{3})/m).filter((part) => /^HTTP\//.test(part))
  const response = responses.at(-1)
  assert.ok(response, `no HTTP status was printed: ${where}`)
  const { status, headers } = parseRawResponse(response)
  assert.equal(status, claim.status, where)
  for (const [name, value] of claim.headers) {
    assert.ok(name in headers, `no ${name} header: ${where}`)
    assert.match(headers[name]!, valuePattern(value), where)
  }
}

/** The walk-through is curl in bash: without them it cannot run here (it is a reader's machine, not CI). */
const missingTools = ['bash', 'curl'].filter((tool) => spawnSync(tool, ['--version']).error !== undefined)

test(
  "README.md's walk-through runs as written, top to bottom, on a fresh server",
  {
    timeout: 180_000,
    skip: missingTools.length > 0 && !process.env.CI ? `${missingTools.join(' and ')} not installed` : false,
  },
  async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
    const blocks = shellBlocks(readme, '## Walk-through', '## Routes')
    const steps = blocks.flatMap(stepsOf)
    assert.ok(blocks.length >= 6, `${blocks.length} blocks`)
    assert.ok(steps.filter((step) => step.claim).length >= 25, 'most steps claim what they answer')

    // A folder of its own, as a fresh clone: the server makes its data/ there; the commands find
    // this project's packages (otpauth for `totp`) through node_modules.
    const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-readme-'))
    folders.push(dir)
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
    const server = await startServerProcess(
      { NODE_ENV: 'development', LOG_LEVEL: 'info' },
      { cwd: dir, bare: true },
    )
    server.child.stdout.on('data', (chunk: string) => appendFileSync(path.join(dir, 'server.log'), chunk))
    appendFileSync(path.join(dir, 'server.log'), server.output.stdout)

    const marker = (index: number) => `@@step ${index}@@`
    const script = steps
      .map((step, index) => `printf '\\n%s\\n' '${marker(index)}'\n${step.commands}`)
      .join('\n')
      .replaceAll(README_ADDRESS, server.url)
    // Asynchronously: this process must go on writing the server's log to server.log meanwhile.
    const run = await promisify(execFile)(
      'bash',
      ['-c', `exec 2>&1\n${script}\nprintf '\\n%s\\n' '@@end@@'`],
      {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        encoding: 'utf8',
        timeout: 150_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    )
    // As printed: curl -i keeps HTTP's CRLF line ends, which parseRawResponse reads.
    const printed = run.stdout
    assert.ok(printed.includes('@@end@@'), printed)
    for (const [index, step] of steps.entries()) {
      const start = printed.indexOf(marker(index)) + marker(index).length
      const end = printed.indexOf('@@', start)
      const output = printed.slice(start, end).replace(/\n$/, '').replace(/^\n/, '')
      if (step.claim) checkClaim(step, output)
      else
        assert.doesNotMatch(
          output,
          /command not found|No such file|error/i,
          `block ${step.block + 1}: ${step.commands}`,
        )
    }
    // Every claim was checked: as many as the README makes.
    assert.equal(
      steps.filter((step) => step.claim).length,
      [...blocks.join('\n').matchAll(/^# → /gm)].length,
      'a claim was not attached to a command',
    )
  },
)
