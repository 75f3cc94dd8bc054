// A Prisma generator that writes the parsed data model (DMMF) to JSON, so the
// drift test can compare schema.prisma with a migrated database without
// Prisma's schema engine, which cannot be downloaded here.
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import generatorHelper from '@prisma/generator-helper'

generatorHelper.generatorHandler({
  onManifest: () => ({ prettyName: 'Data model JSON', defaultOutput: './datamodel.json' }),
  onGenerate: async (options) => {
    const output = options.generator.output?.value
    if (!output) throw new Error('datamodel generator: no output path')
    await mkdir(dirname(output), { recursive: true })
    await writeFile(output, JSON.stringify(options.dmmf.datamodel, null, 2) + '\n')
  },
})
