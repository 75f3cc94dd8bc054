import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { EnvSchema } from '../../src/config.js'

/**
 * The documentation holds together: every relative link of README.md,
 * docs/*.md and bench/README.md names a file of the repository (and, for
 * `#anchor` links to Markdown, one of its headings), and every configuration
 * variable of src/config.ts's schema is documented in docs/configuration.md and
 * in .env.example.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

const docsDir = join(root, 'docs')
const documents = [
  join(root, 'README.md'),
  ...readdirSync(docsDir).filter((name) => name.endsWith('.md')).sort().map((name) => join(docsDir, name)),
  join(root, 'bench/README.md'),
]

/** The lines of a Markdown file outside fenced code blocks, with their numbers. */
function proseLines (text: string): { line: string, number: number }[] {
  const lines: { line: string, number: number }[] = []
  let fence: string | null = null
  text.split('\n').forEach((line, index) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1]
    if (fence === null && marker) {
      fence = marker
    } else if (fence !== null) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = null
    } else {
      lines.push({ line, number: index + 1 })
    }
  })
  return lines
}

/** GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf (file: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const { line } of proseLines(readFileSync(file, 'utf8'))) {
    for (const match of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1] ?? '')
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1]
    if (heading === undefined) continue
    const text = heading
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link reads as its text
      .replace(/`/g, '')
    const slug = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return anchors
}

/** Inline links and images `[text](target)` and reference definitions `[x]: target`, outside code. */
function linksOf (file: string): { target: string, number: number }[] {
  const links: { target: string, number: number }[] = []
  for (const { line, number } of proseLines(readFileSync(file, 'utf8'))) {
    const prose = line.replace(/(`+)[\s\S]*?\1/g, '') // code spans are not links
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: match[1] ?? '', number })
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(prose)
    if (definition?.[1]) links.push({ target: definition[1], number })
  }
  return links
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')

t.test('every relative link resolves to a file of the repository, and every anchor to a heading', async (t) => {
  const broken: string[] = []
  let checked = 0
  for (const file of documents) {
    const from = relative(root, file)
    for (const { target, number } of linksOf(file)) {
      if (isExternal(target)) continue
      checked++
      const [pathPart = '', anchor] = target.split('#', 2)
      const path = decodeURIComponent(pathPart.split('?')[0] ?? '')
      const resolved = path === '' ? file : resolve(dirname(file), path)
      const where = `${from}:${number}: ${target}`
      if (resolved !== root && !resolved.startsWith(root + sep)) {
        broken.push(`${where}: outside the repository`)
        continue
      }
      if (!existsSync(resolved)) {
        broken.push(`${where}: no such file`)
        continue
      }
      if (anchor !== undefined && anchor !== '' && resolved.endsWith('.md') && statSync(resolved).isFile()) {
        if (!anchorsOf(resolved).has(decodeURIComponent(anchor).toLowerCase())) {
          broken.push(`${where}: no heading with that anchor in ${relative(root, resolved)}`)
        }
      }
    }
  }
  t.ok(checked > 0, `${checked} relative links checked`)
  t.same(broken, [], 'broken links')
})

const variables = Object.keys(EnvSchema.properties)

t.test('docs/configuration.md documents every configuration variable, and none that is not one', async (t) => {
  t.ok(variables.length > 0)
  const documented = new Set<string>()
  for (const { line } of proseLines(readFileSync(join(root, 'docs/configuration.md'), 'utf8'))) {
    const name = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/.exec(line)?.[1]
    if (name) documented.add(name)
  }
  t.same(variables.filter((name) => !documented.has(name)), [], 'variables without a row in docs/configuration.md')
  t.same([...documented].filter((name) => !variables.includes(name)), [], 'rows naming no variable of src/config.ts')
})

t.test('.env.example lists every configuration variable, and none that is not one', async (t) => {
  const listed = new Set<string>()
  for (const line of readFileSync(join(root, '.env.example'), 'utf8').split('\n')) {
    const name = /^#?\s?([A-Z][A-Z0-9_]*)=/.exec(line)?.[1]
    if (name) listed.add(name)
  }
  t.same(variables.filter((name) => !listed.has(name)), [], 'variables without a NAME= line (set or commented) in .env.example')
  t.same([...listed].filter((name) => !variables.includes(name)), [], 'lines naming no variable of src/config.ts')
})
