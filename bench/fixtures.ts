/** Synthetic inputs for the benchmarks, sized like real test files. */

/** A template with simple substitutions: ten vars, one partial-free service, three steps. */
export const simpleTemplate = `[meta]
name = <%~ toml(it.name) %>
description = "<%= it.v1 %> <%= it.v2 %> <%= it.v3 %>"

[services.app]
image = <%~ toml(it.image) %>
env = { A = "<%= it.v4 %>", B = "<%= it.v5 %>", C = "<%= it.v6 %>" }

[[steps]]
name = "one"
run = "echo <%= it.v7 %>"

[[steps]]
name = "two"
run = "echo <%= it.v8 %>"

[[steps]]
name = "three"
run = "echo <%= it.v9 %>"
`

/** A template with 10×10 nested loops: 100 steps, each using helpers. */
export const complexTemplate = `[meta]
name = "complex"

[services.app]
image = <%~ toml(it.image) %>
<% for (let i = 0; i < 10; i++) { -%>
<% for (let j = 0; j < 10; j++) { -%>

[[steps]]
name = "step <%= i %>-<%= j %>"
run = <%~ toml(\`echo \${fake.word()} \${i * j} \${sha256(String(i + j)).slice(0, 6)}\`) %>
expected_output_regex = <%~ toml(\`^\\\\w+ \${i * j} \`) %>
<% } -%>
<% } -%>

[determinism]
seed = 1
`

export const templateVars: Record<string, unknown> = {
  name: 'bench', image: 'busybox:1.36', v1: 'a', v2: 'b', v3: 'c', v4: 'd', v5: 'e', v6: 'f', v7: 'g', v8: 'h', v9: 'i',
}

/** A test file of about `lines` lines: two services and as many 10-line steps as fit. */
export function testFileOfLines(lines: number): string {
  const head = `[meta]
name = "large"
description = "generated for the parse benchmark"

[services.app]
image = "busybox:1.36"
ports = [8080]
env = { MODE = "bench" }

[services.db]
image = "busybox:1.36"
health_check = { cmd = ["true"], interval = "50ms" }
`
  const steps: string[] = []
  for (let i = 0; head.split('\n').length + steps.length * 10 < lines; i++) {
    steps.push(`
[[steps]]
name = "step ${i}"
service = "${i % 2 ? 'app' : 'db'}"
run = "echo step ${i}"
expected_output_regex = ["^step ${i}$", "\\\\d+"]
expected_output_regex_not = "error"
timeout = "5s"
env = { I = ${i} }
continue_on_failure = false`)
  }
  return `${head}${steps.join('\n')}\n`
}
