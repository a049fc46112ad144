/**
 * What `answer` resolves to, or `fallback` once `timeoutMs` passed without it; the timer is
 * cleared either way, so a quick answer leaves nothing to keep the process alive. A rejection
 * of `answer` within the time is passed on.
 */
export async function answerWithin<T, F>(answer: Promise<T>, timeoutMs: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<F>(resolve => (timer = setTimeout(() => resolve(fallback), timeoutMs)))
  try {
    return await Promise.race([answer, timeout])
  }
  finally {
    clearTimeout(timer)
  }
}
