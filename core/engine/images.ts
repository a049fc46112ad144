import type Dockerode from 'dockerode'
import { MissingImageError } from './docker.ts'

/** A pull's progress, as the engine reports it. */
export interface PullProgress {
  image: string
  status: string
  progress?: string
}

/**
 * Resolves image references to image ids, once per reference: a local image is inspected, a
 * missing one pulled (with progress). A failure is not remembered, so the next run tries again.
 * Throws `MissingImageError` when the image is neither local nor pullable.
 */
export function createImageResolver(docker: () => Dockerode, onPull: (progress: PullProgress) => void): (image: string) => Promise<string> {
  const ids = new Map<string, Promise<string>>()
  const resolve = async (image: string): Promise<string> => {
    try {
      return (await docker().getImage(image).inspect()).Id
    }
    catch {}
    try {
      const stream = await docker().pull(image)
      // followProgress reads the stream to its end and listens for its errors.
      await new Promise<void>((done, fail) => {
        docker().modem.followProgress(stream, error => (error ? fail(error) : done()), (event: { status?: string; progress?: string }) => {
          onPull({ image, status: event.status ?? '', progress: event.progress })
        })
      })
      return (await docker().getImage(image).inspect()).Id
    }
    catch (error) {
      throw new MissingImageError(image, error)
    }
  }
  return (image) => {
    let id = ids.get(image)
    if (!id) {
      id = resolve(image)
      ids.set(image, id)
      id.catch(() => ids.delete(image))
    }
    return id
  }
}
