/**
 * The Prometheus text exposition format (version 0.0.4), parsed for tests:
 * `# HELP` and `# TYPE` lines, and samples `name{label="value",...} value
 * [timestamp]`, label values unescaped (\\, \", \n). Enough to read what
 * prom-client writes and to refuse anything malformed, so a test that
 * scrapes also checks the text is well formed.
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Exposition {
  samples: Sample[]
  /** Metric family name → counter, gauge, histogram, summary or untyped. */
  types: Map<string, string>
  help: Map<string, string>
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export function parsePrometheusText (text: string): Exposition {
  const exposition: Exposition = { samples: [], types: new Map(), help: new Map() }
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim()
    if (line === '') return
    const fail = (why: string): never => {
      throw new Error(`line ${index + 1}: ${why}: ${raw}`)
    }
    if (line.startsWith('#')) {
      const comment = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line)
      if (!comment) return // any other comment is allowed
      const [, kind, name, rest = ''] = comment
      if (!NAME.test(name!)) fail('bad metric name')
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) fail('bad type')
        exposition.types.set(name!, rest)
      } else {
        exposition.help.set(name!, rest)
      }
      return
    }
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? fail('no metric name')
    let at = name.length
    const labels: Record<string, string> = {}
    if (line[at] === '{') {
      at++
      while (line[at] !== '}') {
        const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at))?.[0] ?? fail('bad label name')
        if (!LABEL_NAME.test(labelName)) fail('bad label name')
        at += labelName.length
        if (line[at] !== '=' || line[at + 1] !== '"') fail('expected ="')
        at += 2
        let value = ''
        for (;;) {
          const char = line[at] ?? fail('unterminated label value')
          at++
          if (char === '"') break
          if (char === '\\') {
            const next = line[at] ?? fail('dangling escape')
            at++
            value += next === 'n' ? '\n' : next === '\\' || next === '"' ? next : fail('bad escape')
          } else {
            value += char
          }
        }
        if (Object.hasOwn(labels, labelName)) fail(`label ${labelName} twice`)
        labels[labelName] = value
        if (line[at] === ',') at++
        else if (line[at] !== '}') fail('expected , or }')
      }
      at++
    }
    const fields = line.slice(at).trim().split(/\s+/)
    if (fields.length < 1 || fields.length > 2 || fields[0] === '') fail('expected a value and at most a timestamp')
    // Go's ParseFloat, as Prometheus reads them: Inf and NaN in any case (prom-client writes "Nan").
    const valueText = fields[0]!.toLowerCase()
    const special: Record<string, number> = { '+inf': Infinity, inf: Infinity, '-inf': -Infinity, nan: NaN }
    const value = valueText in special ? special[valueText]! : Number(valueText)
    if (Number.isNaN(value) && valueText !== 'nan') fail('bad value')
    exposition.samples.push({ name, labels, value })
  })
  return exposition
}

/** The sample of `name` whose labels are exactly `labels`, or undefined. */
export function sampleOf (exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample | undefined {
  const wanted = Object.entries(labels)
  return exposition.samples.find((sample) =>
    sample.name === name && Object.keys(sample.labels).length === wanted.length && wanted.every(([key, value]) => sample.labels[key] === value))
}

/** The value of that sample; 0 when it is absent (a counter not yet incremented). */
export function valueOf (exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return sampleOf(exposition, name, labels)?.value ?? 0
}

/** GET `${address}/metrics`, checked and parsed; the raw text beside it. */
export async function scrape (address: string): Promise<Exposition & { text: string; contentType: string | null }> {
  const response = await fetch(`${address}/metrics`)
  const text = await response.text()
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${text}`)
  return { ...parsePrometheusText(text), text, contentType: response.headers.get('content-type') }
}
