/**
 * Runs `work` on every item, at most `concurrency` at once, taking items in order; once `stop()`
 * says so, no further item is started (those running finish). A rejection of `work` rejects the
 * whole run, as Promise.all does.
 */
export async function forEachLimited<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
}
