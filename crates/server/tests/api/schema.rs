//! The exported SDL: committed at the repository root, kept current, and a
//! superset of the contract's (crates/server/tests/api/contract.graphql is a
//! copy of the shared contract's schema.graphql).

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

/// Every type of an SDL document, each with its members: a field as
/// `name(arg: Type, ...): Type`, an enum value as its name.
fn members(sdl: &str) -> BTreeMap<String, Vec<String>> {
    let doc = parse_schema(sdl).expect("a valid SDL");
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let items = match ty.kind {
            TypeKind::Object(object) => object
                .fields
                .into_iter()
                .map(|f| {
                    let f = f.node;
                    let args: Vec<String> = f
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    format!("{}({}): {}", f.name.node, args.join(", "), f.ty.node)
                })
                .collect(),
            TypeKind::Enum(e) => e
                .values
                .into_iter()
                .map(|v| v.node.value.node.to_string())
                .collect(),
            _ => Vec::new(),
        };
        out.insert(ty.name.node.to_string(), items);
    }
    out
}

#[test]
fn the_committed_schema_graphql_is_what_print_schema_prints() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql at the repository root");
    assert!(
        committed == holdfast_server::graphql::sdl(),
        "schema.graphql is stale: run `just schema` (holdfast-server print-schema > schema.graphql)"
    );
}

#[test]
fn every_name_of_the_contract_is_in_the_schema_with_its_type_and_arguments() {
    let contract = members(include_str!("contract.graphql"));
    let ours = members(&holdfast_server::graphql::sdl());
    // Guard against a parse that finds nothing, which would check nothing.
    assert!(
        contract.len() >= 18,
        "types in the contract: {}",
        contract.len()
    );
    assert_eq!(contract["Query"].len(), 8);
    assert_eq!(contract["Mutation"].len(), 7);
    let mut missing = Vec::new();
    for (ty, items) in &contract {
        // The live-updates issue adds the subscription.
        if ty == "Subscription" {
            continue;
        }
        let Some(our_items) = ours.get(ty) else {
            missing.push(format!("type {ty}"));
            continue;
        };
        for item in items {
            if !our_items.contains(item) {
                missing.push(format!("{ty}.{item}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing from the schema: {missing:#?}");
}
