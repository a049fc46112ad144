import type { FieldDef, TypeDef } from './fields.ts'
import { testFileTable } from './definition.ts'

/** A JSON Schema node (draft-07), as plain data. */
export type JsonSchema = { [key: string]: unknown }

const DURATION_PATTERN = '^(?:\\d+|(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h))+)$'

/** Converts one type definition to JSON Schema. */
export function typeToJsonSchema(type: TypeDef): JsonSchema {
  switch (type.kind) {
    case 'string':
      return {
        type: 'string',
        ...(type.enum && { enum: [...type.enum] }),
        ...(type.examples && { examples: [...type.examples] }),
        ...(type.nonEmpty && { minLength: 1 }),
        ...(type.pattern && { pattern: type.pattern.source }),
      }
    case 'integer':
      return { type: 'integer', ...(type.minimum !== undefined && { minimum: type.minimum }), ...(type.maximum !== undefined && { maximum: type.maximum }) }
    case 'number':
      return { type: 'number', ...(type.minimum !== undefined && { minimum: type.minimum }), ...(type.maximum !== undefined && { maximum: type.maximum }) }
    case 'boolean':
      return { type: 'boolean' }
    case 'duration':
      return { anyOf: [{ type: 'string', pattern: DURATION_PATTERN, examples: ['250ms', '5s', '2m'] }, { type: 'integer', minimum: type.positive ? 1 : 0 }] }
    case 'regex':
      return { type: 'string', format: 'regex' }
    case 'datetime':
      return { type: 'string', format: 'date-time' }
    case 'scalar':
      return { type: ['string', 'integer', 'boolean'] }
    case 'array':
      return { type: 'array', items: typeToJsonSchema(type.items) }
    case 'oneOrMany': {
      const items = typeToJsonSchema(type.items)
      return { anyOf: [items, { type: 'array', items }] }
    }
    case 'record':
      return {
        type: 'object',
        additionalProperties: typeToJsonSchema(type.values),
        ...(type.keys && { propertyNames: { pattern: type.keys.pattern } }),
      }
    case 'table':
      return tableToJsonSchema(type.fields, type.unknownKeys)
    case 'any':
      return {}
    case 'union':
      return { anyOf: type.variants.map(typeToJsonSchema) }
  }
}

function tableToJsonSchema(fields: Readonly<Record<string, FieldDef>>, unknownKeys: 'error' | 'warning' | 'notSupported' = 'error'): JsonSchema {
  const properties: Record<string, JsonSchema> = {}
  const required: string[] = []
  for (const [name, def] of Object.entries(fields)) {
    // Listed so editors explain the key on hover, and `not: {}` so they flag it as clnrm does.
    if (def.notSupported) {
      properties[name] = { description: def.description, not: {} }
      continue
    }
    const schema = { description: def.description, ...typeToJsonSchema(def.type), ...(def.default !== undefined && { default: def.default }) }
    properties[name] = schema
    for (const alias of def.aliases ?? []) properties[alias] = { ...schema, description: `Same as \`${name}\`. ${def.description}` }
    if (def.required) required.push(name)
  }
  // Unknown keys are errors in clnrm; in free-text tables ([meta]) they are warnings, so editors allow them.
  return { type: 'object', properties, ...(required.length && { required }), additionalProperties: unknownKeys === 'warning' }
}

/** The JSON Schema of `*.clnrm.toml`, for editors (Taplo / Even Better TOML). */
export function createJsonSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'clnrm test file',
    description: 'A hermetic integration test: container services and the steps that run inside them.',
    ...tableToJsonSchema(testFileTable.fields, testFileTable.unknownKeys),
  }
}
