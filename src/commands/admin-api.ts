import { WcagaiApi } from '../clients/wcagai-api.js';
import { WcagaiError } from '../errors/catalogue.js';
import { loadDotEnv } from '../config/dotenv.js';

export interface AdminFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

/** A server's admin API from --url/--token, defaulting to WCAGAI_URL and ADMIN_TOKEN (.env read too). */
export function adminApi(flags: AdminFlags): WcagaiApi {
  loadDotEnv();
  const url = flags.url ?? process.env.WCAGAI_URL;
  if (!url) throw new WcagaiError('USAGE', 'no server: give --url URL or set WCAGAI_URL');
  return new WcagaiApi({ url, token: flags.token ?? process.env.ADMIN_TOKEN });
}
