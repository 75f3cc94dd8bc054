import neostandard from 'neostandard'

// The Fastify organisation's config (neostandard), TypeScript and JSX included.
export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'src/generated/**', '.data/**', '.tap/**', '.ci/node24/**', 'bench/results/**'],
  }),
  {
    rules: {
      // A fire-and-forget promise is marked with `void`, on purpose.
      'no-void': ['error', { allowAsStatement: true }],
      // A TypeBox schema and its Static type share a name by design; TypeScript itself reports real redeclarations.
      '@typescript-eslint/no-redeclare': 'off',
    },
  },
]
