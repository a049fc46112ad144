/** Where the app reads its status. The API stub lives in public/, so Vite and the test container both serve it. */
export const STATUS_URL = '/api/status.json'

export interface Status {
  ok: boolean
  service: string
}

export async function fetchStatus(): Promise<Status> {
  const response = await fetch(STATUS_URL)
  return response.json() as Promise<Status>
}
