// Loaded with `node --import`: prints every react/ink module the program resolves, to prove they load lazily.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (/node_modules\\/(react|ink|react-reconciler|yoga-layout)\\//.test(result.url)) process.stderr.write('LOADED ' + result.url + '\\n');
  return result;
}`)}`,
);
