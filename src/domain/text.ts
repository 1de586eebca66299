/**
 * Text from pages and other services must not drive the terminal it is printed on: line breaks
 * and tabs become a space, and every other C0 and C1 control character (ESC and CSI included, so
 * no escape sequence can start) is dropped. Used by the pretty reporter and by `wcagai top`.
 */
export function clean(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
}
