import { fetchStatus } from './api.ts'
import { greeting } from './greeting.ts'

document.querySelector('#greeting')!.textContent = greeting('playground')
fetchStatus().then((status) => {
  document.querySelector('#status')!.textContent = status.ok ? `API ok (${status.service})` : 'API down'
})
