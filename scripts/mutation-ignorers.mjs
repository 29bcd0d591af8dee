/**
 * Stryker ignorer plugin (scripts/mutate.ts loads it): mutants inside a log call are not run.
 * A log line's wording, level and fields are for the people who read the log; a test pinning each
 * of them would be a copy of the source, so a changed message is no regression a test should catch.
 * What is logged for security (secrets never in a line) is tested by the logging tests.
 */
import { PluginKind, declareClassPlugin } from '@stryker-mutator/api/plugin'

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])

/** `log.info(…)`, `context.log.warn(…)`, `request.log[level](…)`, `app.log.error(…)`. */
function isLogCall(node) {
  if (node.type !== 'CallExpression' || node.callee.type !== 'MemberExpression') return false
  const { object, property, computed } = node.callee
  const level = !computed && property.type === 'Identifier' ? property.name : undefined
  if (level !== undefined && !LEVELS.has(level)) return false
  const named = (candidate) =>
    (candidate.type === 'Identifier' && (candidate.name === 'log' || candidate.name === 'logger')) ||
    (candidate.type === 'MemberExpression' &&
      !candidate.computed &&
      candidate.property.type === 'Identifier' &&
      candidate.property.name === 'log')
  return named(object)
}

class LogCallIgnorer {
  shouldIgnore(path) {
    if (isLogCall(path.node)) return 'A log line: its wording is for readers of the log, not a rule.'
    return undefined
  }
}

export const strykerPlugins = [declareClassPlugin(PluginKind.Ignore, 'log-calls', LogCallIgnorer)]
