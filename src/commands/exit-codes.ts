/** Exit codes of every command: 0 ok, 1 usage or tool error, 2 accessibility gate failed, 99 threshold failed. */
export type ExitCode = 0 | 1 | 2 | 99;
