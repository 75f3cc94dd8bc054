/**
 * Reads a V8 .cpuprofile (what `node --cpu-prof` and bench/cpu-profile.mjs
 * write) and says where the time went: self time by function and by file or
 * package, and the time of chosen functions ("probes": a hook with what it
 * calls), each also per request when the number of requests is known.
 *
 * A sample counts for the innermost probe on its stack: Fastify's callback
 * hooks call the next hook from their `done()`, so a hook's inclusive time
 * would hold every hook after it; with the next hook (and the steps after
 * the last one: handleRequest, onSendEnd) as probes too, each gets its own.
 *
 *   npx tsx bench/cpuprofile-summary.ts <file.cpuprofile> [requests]
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** A function of the profile, matched by name and where it is defined. */
export interface Probe {
  label: string
  functionName: string
  /** A fragment of the defining file's URL. */
  url: string
}

export interface Summary {
  /** Microseconds sampled in all, and not idle. */
  totalUs: number
  busyUs: number
  selfByFunction: { key: string; us: number }[]
  selfByFile: { key: string; us: number }[]
  probes: { label: string; us: number }[]
  /** Self time of the samples under no probe, by function. */
  outsideByFunction: { key: string; us: number }[]
}

const WHERE = /(?:node_modules\/((?:@[^/]+\/)?[^/]+))|(?:\/(dist\/src\/.*|bench\/.*))$|^node:(.*)$/

/** What a file is, briefly: a package name, a path of the project, a node: module, or a V8 pseudo-node. */
function fileKey (url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  const match = WHERE.exec(url)
  if (!match) return url
  if (match[1]) return match[1]
  if (match[2]) return match[2]
  return `node:${match[3]}`
}

export function summarise (profile: CpuProfile, probes: Probe[] = []): Summary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  // Time of each sample: V8 gives the delta to the previous one; the sample's time is the next delta.
  const selfUs = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + us)
  }
  let totalUs = 0
  let idleUs = 0
  const byFunction = new Map<string, number>()
  const byFile = new Map<string, number>()
  const probeUs = probes.map(() => 0)
  let outsideUs = 0
  const outside = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id)!
    totalUs += us
    if (callFrame.functionName === '(idle)') {
      idleUs += us
      continue
    }
    const file = fileKey(callFrame.url, callFrame.functionName)
    const fn = `${callFrame.functionName || '(anonymous)'} ${file}:${callFrame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
    byFile.set(file, (byFile.get(file) ?? 0) + us)
    // The innermost probe on the sample's stack gets it.
    let found = -1
    for (let at: number | undefined = id; at !== undefined && found < 0; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame
      found = probes.findIndex((probe) => frame.functionName === probe.functionName && frame.url.includes(probe.url))
    }
    if (found >= 0) probeUs[found]! += us
    else {
      outsideUs += us
      outside.set(fn, (outside.get(fn) ?? 0) + us)
    }
  }
  const sorted = (map: Map<string, number>) => [...map].map(([key, us]) => ({ key, us })).sort((a, b) => b.us - a.us)
  return {
    totalUs,
    busyUs: totalUs - idleUs,
    selfByFunction: sorted(byFunction),
    selfByFile: sorted(byFile),
    probes: [...probes.map((probe, i) => ({ label: probe.label, us: probeUs[i]! })), { label: '(under no probe)', us: outsideUs }],
    outsideByFunction: sorted(outside),
  }
}

/** Prints a summary: shares of the busy time, and microseconds per request when `requests` is given. */
export function printSummary (title: string, summary: Summary, requests?: number, top = 25): void {
  const perRequest = (us: number) => (requests ? `${(us / requests).toFixed(2).padStart(7)} µs/req` : '')
  const share = (us: number) => `${((100 * us) / summary.busyUs).toFixed(1).padStart(5)} %`
  console.log(`\n== ${title}: busy ${(summary.busyUs / 1e6).toFixed(2)} s of ${(summary.totalUs / 1e6).toFixed(2)} s sampled` +
    (requests ? `, ${requests} requests, ${(summary.busyUs / requests).toFixed(2)} µs of CPU per request` : ''))
  console.log('-- self time by file or package')
  for (const { key, us } of summary.selfByFile.slice(0, top)) console.log(`${share(us)} ${perRequest(us)}  ${key}`)
  console.log('-- self time by function')
  for (const { key, us } of summary.selfByFunction.slice(0, top)) console.log(`${share(us)} ${perRequest(us)}  ${key}`)
  if (summary.probes.length > 1) {
    console.log('-- by probe (the function and what it calls, up to the next probe)')
    for (const { label, us } of summary.probes) console.log(`${share(us)} ${perRequest(us)}  ${label}`)
    console.log('-- under no probe, self time by function')
    for (const { key, us } of summary.outsideByFunction.slice(0, 12)) console.log(`${share(us)} ${perRequest(us)}  ${key}`)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, requests] = process.argv.slice(2)
  if (!file) throw new Error('usage: npx tsx bench/cpuprofile-summary.ts <file.cpuprofile> [requests]')
  printSummary(file, summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile), requests ? Number(requests) : undefined)
}
