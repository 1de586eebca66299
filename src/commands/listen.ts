import type { FastifyInstance } from 'fastify';
import type { Service } from '../app/service.js';
import { WcagaiError } from '../errors/catalogue.js';

/**
 * Listens on host:port, or stops everything the service started (its worker, Redis connections,
 * browser) and its signal handlers, then fails in one line: a process that cannot serve exits 1
 * instead of running on unreachable, its embedded worker still taking scans.
 */
export async function listenOrStop(service: Service, app: FastifyInstance, host: string, port: number, removeHandlers: () => void): Promise<string> {
  try {
    return await app.listen({ port, host });
  } catch (err) {
    removeHandlers();
    await service.close();
    // As after a shutdown, the process then exits on its own word: a closed service may still hold
    // a handle or two (they are not worth waiting for). The error line is written before this fires.
    setTimeout(() => process.exit(1), 200).unref();
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the address is already in use' : e.code === 'EACCES' ? 'permission denied' : (e.message ?? String(err)).split('\n')[0];
    throw new WcagaiError('USAGE', `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`);
  }
}
