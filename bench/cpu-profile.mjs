// This process's CPU over IPC, for the bench: the CPU time it has used (figure
// 1 divides it by the requests served: CPU per request, which the machine's
// load skews far less than req/s), and V8's sampling CPU profiler switched on
// and off (bench/profile.ts), so that one service process gives a profile per
// load phase. Shared by bench/service-hooks.mjs and bench/bare-fastify.mjs.
//   {type: 'cpu-usage', id}                          -> {id, cpuUs}: user + system
//   {type: 'cpu-profile', id, on: true, intervalUs}  -> {id}
//   {type: 'cpu-profile', id, on: false, path}       -> {id, path}: the
//                                    profile written as a .cpuprofile (JSON,
//                                    what --cpu-prof writes, Chrome DevTools reads)
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'

let session

/** Answers a 'cpu-usage' or 'cpu-profile' message and returns true; false for any other message. */
export async function answerCpuMessage (message, answer) {
  if (message.type === 'cpu-usage') {
    const { user, system } = process.cpuUsage()
    answer({ cpuUs: user + system })
    return true
  }
  if (message.type !== 'cpu-profile') return false
  if (message.on) {
    session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: message.intervalUs ?? 1000 })
    await session.post('Profiler.start')
    answer({})
  } else {
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    session = undefined
    await writeFile(message.path, JSON.stringify(profile))
    answer({ path: message.path })
  }
  return true
}
