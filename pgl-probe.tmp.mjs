import { PGlite } from '@electric-sql/pglite'
const rss = () => (process.memoryUsage().rss/1048576).toFixed(0)
const extra = (process.env.EXTRA || '').split(' ').filter(Boolean).flatMap((x) => ['-c', x])
const opts = {}
if (process.env.INIT_MEM) opts.initialMemory = Number(process.env.INIT_MEM) * 1048576
if (extra.length) opts.startParams = [...PGlite.defaultStartParams, ...extra]
let t = Date.now()
const db = await PGlite.create(process.argv[2] || undefined, opts)
const mem = () => (db.mod.wasmMemory ?? db.mod.HEAPU8).buffer.byteLength/1048576
console.log('create ms', Date.now() - t, 'rss', rss(), 'wasm', mem(), 'mu', JSON.stringify(Object.fromEntries(Object.entries(process.memoryUsage()).map(([k,v])=>[k,Math.round(v/1048576)]))))
global.gc?.(); await new Promise(r=>setTimeout(r,200)); global.gc?.()
console.log('after gc rss', rss(), 'wasm', mem())
await db.exec('create table if not exists t (id serial primary key, a text, b bytea)')
t = Date.now()
for (let i = 0; i < 3000; i++) await db.query('insert into t (a, b) values ($1, $2)', ['x'.repeat(100), Buffer.alloc(200)])
for (let i = 0; i < 3000; i++) await db.query('select * from t where id = $1', [i])
console.log('workload ms', Date.now() - t, 'rss', rss(), 'wasm', mem())
global.gc?.()
console.log('after gc rss', rss(), 'wasm', mem())
for (const s of ['shared_buffers','work_mem','wal_buffers']) { const r = await db.query(`show ${s}`); console.log(s, Object.values(r.rows[0])[0]) }
await db.close()
process.exit(0)
