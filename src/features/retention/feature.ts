import type { Feature } from '../feature.js'
import retentionPlugin from './plugin.js'

export const retention: Feature = {
  name: 'retention',
  plugins: [retentionPlugin],
}
