// pino JSON logs on stdout; request handlers log through children bound to sandbox and pod.

import pino, { type Logger } from 'pino';

export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { svc: 'ovnoded' }, timestamp: pino.stdTimeFunctions.isoTime });
}
