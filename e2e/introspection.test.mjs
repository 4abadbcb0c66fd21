// Introspection as real tools run it: graphql-js' own getIntrospectionQuery(),
// with its default options and with every option on (what GraphiQL and code
// generators send), against the real holdfast-server binary. Each is answered
// in full, without a token, buildClientSchema() makes a valid schema of the
// answer, and that schema is the committed schema.graphql, type for type (the
// options add details the SDL does not print, and change nothing).
//
// Run: `node e2e/introspection.test.mjs` (after `scripts/e2e-setup.sh` and a
// `cargo build`), or through `cargo nextest run -p holdfast-server --test board`.
// `node e2e/introspection.test.mjs --print-query` prints the query with every
// option on, as crates/server/tests/fixtures/introspection.graphql holds it for
// the Rust tests; this test fails when that file falls behind graphql-js.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  buildClientSchema, buildSchema, findBreakingChanges, findDangerousChanges, getIntrospectionQuery,
  lexicographicSortSchema, parse, printSchema, specifiedDirectives, validate, validateSchema, version,
} from 'graphql';

import { SERVER_BIN, post, requireFiles, root, run } from './harness.mjs';

const EVERY_OPTION = {
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
};
const FIXTURE = path.join(root, 'crates/server/tests/fixtures/introspection.graphql');

function fixture() {
  return `# graphql-js ${version}'s getIntrospectionQuery() with every option on, as\n`
    + `# ${JSON.stringify(EVERY_OPTION)}\n`
    + '# (what GraphiQL and code generators send). Regenerate: see e2e/introspection.test.mjs.\n'
    + getIntrospectionQuery(EVERY_OPTION).replace(/^\n/, '');
}

if (process.argv.includes('--print-query')) {
  process.stdout.write(fixture());
  process.exit(0);
}

const sorted = (schema) => printSchema(lexicographicSortSchema(schema));

await run('introspection e2e', 60_000, async (stack) => {
  requireFiles([['holdfast-server', SERVER_BIN]]);
  assert.equal(fs.readFileSync(FIXTURE, 'utf8'), fixture(),
    `${path.relative(root, FIXTURE)} is not graphql-js ${version}'s query: rewrite it with \`node e2e/introspection.test.mjs --print-query > ${path.relative(root, FIXTURE)}\``);

  await stack.migrate();
  const { base } = await stack.startServer();
  const committed = buildSchema(fs.readFileSync(path.join(root, 'schema.graphql'), 'utf8'));

  for (const [what, options] of [['default options', {}], ['every option', EVERY_OPTION]]) {
    const body = await post(base, null, getIntrospectionQuery(options));
    assert.equal(body.errors, undefined, `${what}: ${JSON.stringify(body.errors)}`);
    const schema = buildClientSchema(body.data);
    assert.deepEqual(validateSchema(schema), [], `${what}: the client schema is valid`);
    if (options === EVERY_OPTION) {
      // The options add what schema.graphql does not print: async-graphql's
      // stock description of the schema, and DateTime's specifiedByURL. The
      // built-in directives are graphql-js' own on one side (the SDL does
      // not define them), and may differ by a location; they are not ours.
      const builtIn = new Set(specifiedDirectives.map((d) => d.name));
      const changes = [...findBreakingChanges(committed, schema), ...findDangerousChanges(committed, schema)]
        .filter((c) => !(c.type.startsWith('DIRECTIVE_') && [...builtIn].some((d) => c.description.includes(` ${d}.`))));
      assert.deepEqual(changes, [], `${what}: introspection describes schema.graphql`);
    } else {
      assert.equal(sorted(schema), sorted(committed), `${what}: introspection describes schema.graphql`);
    }
    const types = Object.keys(schema.getTypeMap()).filter((n) => !n.startsWith('__')).length;
    stack.log(`getIntrospectionQuery() with ${what}: answered in full (${JSON.stringify(body).length} bytes), ${types} types, schema.graphql's`);

    // What a code generator does next: check the app's queries against it.
    for (const query of [
      'query($id: ID!) { project(id: $id) { name properties(first: 100) { nodes { id code status reservedBy { name } } pageInfo { hasNextPage endCursor } } } }',
      'mutation($id: ID!) { reserveProperty(propertyId: $id) { id status expiresAt } }',
      'subscription { propertyChanged { property { code status } previousStatus status at } }',
    ]) {
      assert.deepEqual(validate(schema, parse(query)).map((e) => e.message), [], query);
    }
  }
});
