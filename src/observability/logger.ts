import { openSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDirectory } from '../config/files.js';
import pino, { type DestinationStream, type Logger } from 'pino';
import { WcagaiError } from '../errors/catalogue.js';
import { currentContext } from './context.js';
import { redactSecrets, textForLog } from './redact.js';

export interface LoggerOptions {
  level: string;
  /** Also append JSON lines to this file (directory created). */
  file?: string;
  /** Human-readable output on stdout (pino-pretty), for terminals. */
  pretty?: boolean;
  /** Where JSON lines go instead of stdout (tests read lines from a sink). */
  destination?: DestinationStream;
  name?: string;
}

/**
 * The `time` field: ISO 8601 as pino's isoTime writes it, formatted once per millisecond (at a few
 * thousand lines a second most lines share their millisecond with the one before).
 */
let lastMs = -1;
let lastTime = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * An asynchronous pino destination (sonic-boom) that is handed Buffers. Given strings, sonic-boom
 * measures the whole chunk it is appending to (`Buffer.byteLength` of a growing string) on every
 * line while a write is in flight, which flattens and copies up to 16 KiB per line: under load, a
 * fifth of what the API allocated per request. In buffer mode it keeps running lengths instead.
 */
export function logDestination(dest: number | string): ReturnType<typeof pino.destination> {
  const stream = pino.destination({ dest, sync: false, contentMode: 'buffer' });
  const writeBuffer = stream.write.bind(stream) as unknown as (chunk: Buffer) => boolean;
  stream.write = (line: string) => writeBuffer(Buffer.from(line));
  return stream;
}

/**
 * The log file's stream, opened here so a path that cannot be written (a directory, no
 * permission) fails the start in one line instead of an unhandled stream error later. A write
 * that fails afterwards (a full disk) is reported once on stderr; logging goes on to stdout.
 */
function fileDestination(file: string): DestinationStream {
  let fd: number;
  try {
    makeDirectory(dirname(file));
    fd = openSync(file, 'a');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new WcagaiError('USAGE', `LOG_FILE=${file}: cannot open it for writing (${e.code ?? e.message})`);
  }
  const stream = logDestination(fd);
  let reported = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (reported) return;
    reported = true;
    process.stderr.write(`wcagai: writing LOG_FILE=${file} failed (${err.code ?? err.message}); its lines are lost from here on\n`);
  });
  return stream;
}

/** pino with the request context (requestId, jobId) mixed into every line. */
export function createLogger(options: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (options.destination) streams.push({ level: options.level as pino.Level, stream: options.destination });
  else if (options.pretty) {
    streams.push({ level: options.level as pino.Level, stream: pino.transport({ target: 'pino-pretty', options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l' } }) });
  } else streams.push({ level: options.level as pino.Level, stream: logDestination(1) });
  if (options.file) streams.push({ level: options.level as pino.Level, stream: fileDestination(options.file) });
  const logger = pino(
    {
      level: options.level,
      ...(options.name ? { name: options.name } : {}),
      // Credentials never reach a line, wherever they appear (see redact.ts).
      formatters: { log: redactSecrets, bindings: redactSecrets },
      // The message is not a field: a URL it quotes (`💥 unhandled rejection: fetch failed for
      // https://…?token=…`) is masked here, with the arguments a format string interpolates.
      hooks: {
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) {
            const arg = args[i] as unknown;
            if (typeof arg === 'string' && arg.includes('://')) (args as unknown[])[i] = textForLog(arg);
          }
          return method.apply(this, args);
        },
      },
      mixin: (_object, _level, logger) => {
        const ctx = currentContext();
        if (!ctx) return {};
        // A child logger may already bind these (Fastify's request logger, the processor's job logger):
        // adding them again would write the key twice in one JSON line, which some log stores refuse.
        const bound = String((logger as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym] ?? '');
        const out: Record<string, string> = {};
        if (ctx.requestId && !bound.includes('"requestId":')) out.requestId = ctx.requestId;
        if (ctx.traceId && !bound.includes('"traceId":')) out.traceId = ctx.traceId;
        if (ctx.jobId && !bound.includes('"jobId":')) out.jobId = ctx.jobId;
        return out;
      },
      timestamp: isoTime,
    },
    // One destination is written directly: multistream costs a little on every line.
    streams.length === 1 ? streams[0]!.stream : pino.multistream(streams),
  );
  // pino formats a child's bindings without formatters.bindings: they are redacted on their way in.
  // Children are made from their parent (Object.create), so every descendant inherits this.
  const makeChild = logger.child as unknown as (this: unknown, bindings: pino.Bindings, childOptions?: unknown) => Logger;
  logger.child = function child(this: unknown, bindings: pino.Bindings, childOptions?: unknown) {
    return makeChild.call(this, redactSecrets(bindings), childOptions);
  } as unknown as Logger['child'];
  return logger;
}
