import { serviceDefinitionHash } from '../format/plan.ts'
import type { ServiceSpec, TestSpec } from '../format/spec.ts'
import { contentHash } from '../hash.ts'
import { groupKeys } from './pool-groups.ts'

/**
 * The definition keys the pool reuses containers under: a container serves only a service whose
 * key is its own.
 */
export class DefinitionKeys {
  readonly #keys = new WeakMap<ServiceSpec, { imageId: string; key: string }>()
  readonly #imageId: (image: string) => Promise<string>

  /** @param imageId resolves an image reference to the engine's image id (pulling a missing image). */
  constructor(imageId: (image: string) => Promise<string>) {
    this.#imageId = imageId
  }

  /** A lone service's key: its image id and definition. Containers are reused only under the same key. */
  async keyFor(service: ServiceSpec): Promise<string> {
    const imageId = await this.#imageId(service.image)
    // The config cache hands out the same spec objects while a file is unchanged, so the
    // definition hash (a stable stringify and a sha1) is worked out once per definition.
    let cached = this.#keys.get(service)
    if (cached?.imageId !== imageId) {
      cached = { imageId, key: contentHash(imageId, serviceDefinitionHash(service), '') }
      this.#keys.set(service, cached)
    }
    return cached.key
  }

  /**
   * The keys of a test's services, in the order of `spec.services`. A multi-service test's are
   * keyed by its whole set of (service id, definition) pairs (`groupKeys`): its containers form a
   * group on a network of their own where the service ids are host names, so they are reused
   * only as a whole (`chooseGroup`), by any test, of any file, whose services have the same ids
   * and definitions, never by two at once.
   */
  async keysFor(spec: TestSpec): Promise<string[]> {
    const services = Object.values(spec.services)
    const lone = await Promise.all(services.map(service => this.keyFor(service)))
    return services.length < 2 ? lone : groupKeys(services, lone)
  }
}
