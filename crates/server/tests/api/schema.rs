//! The exported SDL: committed at the repository root, kept current, and a
//! superset of the contract's (crates/server/tests/api/contract.graphql is a
//! copy of the shared contract's schema.graphql).

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

/// A field (or an enum value: no arguments, no type) as an SDL declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    /// Each argument's name and type, and whether a caller may leave it out
    /// (nullable, or with a default).
    args: Vec<(String, String, bool)>,
    ty: String,
}

impl Member {
    /// Whether this member of our schema serves every call the contract's
    /// `wanted` allows: the same name and type, each of its arguments with
    /// its type, and any argument added since one a caller may leave out.
    fn serves(&self, wanted: &Member) -> bool {
        let has = |(name, ty, _): &(String, String, bool)| {
            self.args.iter().any(|(n, t, _)| n == name && t == ty)
        };
        let added_are_optional = self
            .args
            .iter()
            .all(|(name, _, optional)| *optional || wanted.args.iter().any(|(n, _, _)| n == name));
        self.name == wanted.name
            && self.ty == wanted.ty
            && wanted.args.iter().all(has)
            && added_are_optional
    }
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(n, t, _)| format!("{n}: {t}"))
            .collect();
        write!(f, "{}({}): {}", self.name, args.join(", "), self.ty)
    }
}

/// Every type of an SDL document, each with its members.
fn members(sdl: &str) -> BTreeMap<String, Vec<Member>> {
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
                    let args = f
                        .arguments
                        .iter()
                        .map(|a| {
                            let a = &a.node;
                            let optional = a.ty.node.nullable || a.default_value.is_some();
                            (a.name.node.to_string(), a.ty.node.to_string(), optional)
                        })
                        .collect();
                    Member {
                        name: f.name.node.to_string(),
                        args,
                        ty: f.ty.node.to_string(),
                    }
                })
                .collect(),
            TypeKind::Enum(e) => e
                .values
                .into_iter()
                .map(|v| Member {
                    name: v.node.value.node.to_string(),
                    args: Vec::new(),
                    ty: String::new(),
                })
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
    assert_eq!(contract["Query"].len(), 9);
    assert_eq!(contract["Mutation"].len(), 15);
    assert_eq!(contract["Subscription"].len(), 2);
    let mut missing = Vec::new();
    for (ty, items) in &contract {
        let Some(our_items) = ours.get(ty) else {
            missing.push(format!("type {ty}"));
            continue;
        };
        for item in items {
            if !our_items.iter().any(|ours| ours.serves(item)) {
                missing.push(format!("{ty}.{item}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing from the schema: {missing:#?}");
}
