// V8's sampling CPU profiler in this process, switched on and off over IPC by
// the bench (bench/profile.ts), so that one service process gives a profile
// per load phase. Shared by bench/service-hooks.mjs and bench/bare-fastify.mjs.
//   {type: 'cpu-profile', id, on: true, intervalUs}  -> {id}
//   {type: 'cpu-profile', id, on: false, path}       -> {id, path}: the
//                                    profile written as a .cpuprofile (JSON,
//                                    what --cpu-prof writes, Chrome DevTools reads)
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'

let session

/** Answers a 'cpu-profile' message and returns true; false for any other message. */
export async function answerProfileMessage(message, answer) {
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
