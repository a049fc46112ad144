export function greeting(name: string): string {
  return `Hello from the ${name}`
}
