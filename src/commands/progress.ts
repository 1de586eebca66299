/** A one-line progress bar redrawn in place on a terminal stream (stderr, so stdout stays clean). */
export function progressBar(stream: NodeJS.WriteStream, total: number) {
  const width = 30;
  const started = Date.now();
  const draw = (done: number, failed: number) => {
    const filled = Math.round((done / total) * width);
    const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
    stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}${failed ? `, ${failed} failed` : ''} (${rate.toFixed(1)} pages/s)`);
  };
  draw(0, 0);
  return {
    update: draw,
    done: () => stream.write('\n'),
  };
}
