import { isIPv4, isIPv6 } from 'node:net'

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/**
 * The key a client address is counted under. An IPv4 address is its own key (also when it
 * arrives IPv4-mapped, `::ffff:192.0.2.1`). An IPv6 address is counted by its /64 network: one
 * subscriber usually holds a whole /64, and rotating through it must not reset a counter.
 */
export function clientKey(ip: string): string {
  const mapped = IPV4_MAPPED.exec(ip)?.[1]
  if (mapped && isIPv4(mapped)) return mapped
  // An IPv4 address, or anything else that is not IPv6, is its own key.
  if (!isIPv6(ip)) return ip
  // Hexadecimal groups are read as numbers below: their case does not matter.
  const address = ip.split('%')[0]!
  const [head, tail] = address.split('::') as [string, string | undefined]
  const groups = (part: string) => (part === '' ? [] : part.split(':'))
  // A dotted IPv4 tail stands for two groups; it is in the low 64 bits, which are dropped anyway.
  const width = (list: string[]) => list.reduce((sum, group) => sum + (group.includes('.') ? 2 : 1), 0)
  const first = groups(head)
  const last = tail === undefined ? [] : groups(tail)
  const all = [...first, ...Array<string>(8 - width(first) - width(last)).fill('0'), ...last]
  const network = all.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16))
  return `${network.join(':')}::/64`
}
