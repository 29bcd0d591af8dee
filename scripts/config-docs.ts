/**
 * The configuration's two documents, rendered from its declaration (src/config/variables/):
 * .env.example, and the table of README.md's "Configuration" section. Pure functions of the
 * declaration; scripts/generate-config-docs.ts writes and checks the files.
 */
import { hasComputedDefault, type Variable } from '../src/config/declare.js'

export interface VariableGroup {
  title: string
  variables: readonly Variable<unknown>[]
}

/** The README's table sits between these two lines; the rest of the README is written by hand. */
export const TABLE_START =
  '<!-- config-table: written by `npm run config:docs` from src/config/variables/; edit the declarations there -->'
export const TABLE_END = '<!-- /config-table -->'

const ENV_EXAMPLE_HEADER = `# Copy to .env and adjust. Every variable is optional in development; a value shown is the
# default, and an empty one is unset (the comment says what that means). Variables set in the
# real environment win over this file.
#
# Written by \`npm run config:docs\` from src/config/variables/: edit the declarations there.
`

/** Where the comments of .env.example start, so that they line up. */
const COMMENT_COLUMN = 32

/** The Markdown of a description, as plain text for .env.example. */
function plain(markdown: string): string {
  return markdown.replaceAll('**', '').replaceAll('`', '')
}

/** A static default as written in an env file: empty when there is none. */
function written(value: unknown): string {
  if (value === undefined) return ''
  return Array.isArray(value) ? value.join(',') : String(value)
}

function envLine(setting: string, comment: string): string {
  return `${setting.padEnd(COMMENT_COLUMN - 1)} # ${comment}`
}

function envExampleLines(variable: Variable<unknown>): string[] {
  const computed = hasComputedDefault(variable)
  const details = [variable.type.accepts, computed ? `unset: ${variable.documentedDefault}` : undefined]
    .filter((detail) => detail !== undefined)
    .join('; ')
  const comment = details === '' ? variable.description : `${variable.description} [${details}]`
  const value = computed ? '' : written(variable.default)
  const lines = [envLine(`${variable.name}=${value}`, plain(comment))]
  const examples = (variable.examples ?? []).map((example) => ({
    line: `# ${variable.name}=${example.value}`,
    note: example.note,
  }))
  const noteColumn = Math.max(0, ...examples.map(({ line }) => line.length)) + 3
  for (const { line, note } of examples) lines.push(note ? `${line.padEnd(noteColumn)}(${note})` : line)
  return lines
}

export function renderEnvExample(groups: readonly VariableGroup[]): string {
  const sections = groups.map((group) =>
    [`# --- ${group.title}`, ...group.variables.flatMap(envExampleLines)].join('\n'),
  )
  return `${ENV_EXAMPLE_HEADER}\n${sections.join('\n\n')}\n`
}

/** A table cell: a pipe would end it. */
function cell(markdown: string): string {
  return markdown.replaceAll('|', '\\|')
}

function readmeDefault(variable: Variable<unknown>): string {
  if (hasComputedDefault(variable)) return variable.documentedDefault
  const value = written(variable.default)
  return value === '' ? '—' : `\`${value}\``
}

/** The README table, one row per variable, in the order of .env.example (prettier aligns it). */
export function renderConfigTable(groups: readonly VariableGroup[]): string {
  const row = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`
  const rows = groups
    .flatMap((group) => group.variables)
    .map((variable) =>
      row([
        `\`${variable.name}\``,
        readmeDefault(variable),
        variable.type.accepts ?? 'text',
        variable.description,
      ]),
    )
  return [
    row(['variable', 'default', 'accepts', 'meaning']),
    row(['---', '---', '---', '---']),
    ...rows,
  ].join('\n')
}

/** The README with its configuration table replaced; an error when the markers are missing. */
export function withConfigTable(readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START)
  const end = readme.indexOf(TABLE_END)
  if (start === -1 || end < start)
    throw new Error(`README.md has no configuration table between "${TABLE_START}" and "${TABLE_END}"`)
  return `${readme.slice(0, start + TABLE_START.length)}\n\n${table}\n\n${readme.slice(end)}`
}
