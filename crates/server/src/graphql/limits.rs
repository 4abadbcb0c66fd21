//! The limits a request is held to before anything runs, checked on its
//! parsed document (and cached with it, `documents.rs`): depth, the cost of
//! introspection, and page lengths. A request over one is refused whole,
//! `data: null` with a BAD_USER_INPUT error, the way the GraphQL spec refuses
//! a request that does not validate.
//!
//! - **Depth** ([`MAX_DEPTH`]): fields nested in fields, where `ofType` inside
//!   introspection does not count. Tools unwrap a type's `[Plot!]!` with
//!   `ofType { ofType { ... } }`, 9 levels in graphql-js'
//!   `getIntrospectionQuery()`, and each level holds at most one small
//!   object, so its depth says nothing of its cost. async-graphql's own depth
//!   limit, which counts every field, stays on as a hard ceiling
//!   ([`super::DEPTH_CEILING`]).
//! - **Introspection cost** ([`MAX_INTROSPECTION_COST`]): async-graphql's
//!   complexity adds one per field, which suits our connections (they
//!   multiply by their page length) but not introspection's lists, which
//!   have no page: `types { fields { type { fields { ... } } } }` grows
//!   geometrically with each level. Here each introspection list multiplies
//!   what it selects by the length such a list may have.
//! - **Page lengths**: every `first` argument, with the request's variables
//!   applied, is between 0 and `MAX_PAGE`. A resolver that refused it would
//!   come too late: async-graphql leaves a failed field out of its object,
//!   even a non-null one, so the answer would lack the key instead of
//!   refusing the request.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Pos, ServerError, Value as ConstValue, Variables};

use super::paging;
use crate::error::{Code, coded};

/// Deepest query accepted, `ofType` in introspection aside: enough for
/// project > properties > edges > node > activeReservation > agent >
/// activeReservations > property > code, and a little more.
pub const MAX_DEPTH: usize = 12;

/// Costliest introspection accepted, in result values as estimated here:
/// graphql-js' `getIntrospectionQuery()` with every option costs about
/// 240,000 (a unit test below measures it), which leaves room for tools
/// that ask a little more, but not for that query twice over, nor for three
/// levels of `types { fields { type { fields ...` (560,000; ten levels cost
/// about 10^16).
pub const MAX_INTROSPECTION_COST: u64 = 400_000;

/// Selection sets nested in each other, through fragments too, past which a
/// document is refused without looking further. The parser allows 64 within
/// one operation or fragment; fragments spreading fragments could go on, and
/// this bound keeps the walk from going as deep as they do.
const MAX_NESTING: usize = 64;

/// The length an introspection list is taken to have: roughly the longest
/// such list of this schema, rounded up. Other fields are single values.
fn list_length(field: &str) -> u64 {
    match field {
        "types" => 64,
        "fields" | "inputFields" | "enumValues" => 16,
        "directives" => 8,
        "args" | "interfaces" | "possibleTypes" => 4,
        _ => 1,
    }
}

/// Fields that enter introspection from the query root.
fn enters_introspection(field: &str) -> bool {
    field == "__schema" || field == "__type"
}

/// What the limits need to know of a document, worked out once per document.
#[derive(Debug, Default)]
pub struct Shape {
    operations: Vec<OperationShape>,
    /// Each fragment's `first` arguments, by name.
    fragments: HashMap<Name, Pages>,
}

#[derive(Debug)]
struct OperationShape {
    name: Option<Name>,
    summary: Summary,
    pages: Pages,
    /// Variables' default values, for the page lengths.
    defaults: HashMap<Name, ConstValue>,
}

/// A selection set's depth and introspection cost.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    depth: usize,
    cost: u64,
    /// Nested beyond [`MAX_NESTING`] somewhere: refused whatever the rest.
    too_nested: bool,
}

impl Summary {
    /// Adds a sibling selection's summary to this one.
    fn merge(&mut self, other: Summary) {
        self.depth = self.depth.max(other.depth);
        self.cost = self.cost.saturating_add(other.cost);
        self.too_nested |= other.too_nested;
    }
}

/// The `first` arguments of an operation or a fragment, outside the named
/// fragments it spreads, which are listed instead: a request checks those
/// of the fragments its operation reaches, each once.
#[derive(Debug, Default)]
struct Pages {
    arguments: Vec<(Pos, Page)>,
    spreads: Vec<Name>,
}

/// A `first` argument's value, or the variable that gives it.
#[derive(Debug)]
enum Page {
    Literal(i64),
    Variable(Name),
}

impl Pages {
    fn of(set: &SelectionSet) -> Pages {
        let mut pages = Pages::default();
        pages.collect(set);
        pages
    }

    /// Recurses as deep as the selection sets go, which the parser bounds.
    fn collect(&mut self, set: &SelectionSet) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    for (arg, value) in &field.node.arguments {
                        // Every `first` of this schema is a connection's page
                        // length (a unit test checks the SDL for it).
                        if arg.node != "first" {
                            continue;
                        }
                        // The variable it names, if any. Anything but an
                        // integer is the schema's to refuse: it validates
                        // types, with the variables, before running.
                        let page = match value.node.clone().into_const_with(Err::<ConstValue, _>) {
                            Err(variable) => Page::Variable(variable),
                            Ok(ConstValue::Number(n)) => match n.as_i64() {
                                Some(n) => Page::Literal(n),
                                None => continue,
                            },
                            Ok(_) => continue,
                        };
                        self.arguments.push((value.pos, page));
                    }
                    self.collect(&field.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.spreads.push(spread.node.fragment_name.node.clone());
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.node.selection_set.node);
                }
            }
        }
    }
}

impl Shape {
    pub fn of(doc: &ExecutableDocument) -> Shape {
        let mut walker = Walker {
            doc,
            fragments: HashMap::new(),
        };
        let operations = match &doc.operations {
            DocumentOperations::Single(op) => vec![(None, op)],
            DocumentOperations::Multiple(ops) => {
                ops.iter().map(|(name, op)| (Some(name), op)).collect()
            }
        };
        let operations = operations
            .into_iter()
            .map(|(name, op)| walker.operation(name.cloned(), &op.node))
            .collect();
        let fragments = doc
            .fragments
            .iter()
            .map(|(name, fragment)| (name.clone(), Pages::of(&fragment.node.selection_set.node)))
            .collect();
        Shape {
            operations,
            fragments,
        }
    }

    /// Whether the operation a request runs fits the limits, with its
    /// variables. A request naming no operation of the document, or none
    /// where it must, is left to the schema, which says what is wrong.
    pub fn check(
        &self,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<(), ServerError> {
        let operation = match operation_name {
            Some(name) => self
                .operations
                .iter()
                .find(|op| op.name.as_deref() == Some(name)),
            None if self.operations.len() == 1 => self.operations.first(),
            None => None,
        };
        let Some(operation) = operation else {
            return Ok(());
        };
        let summary = &operation.summary;
        if summary.too_nested || summary.depth > MAX_DEPTH {
            return Err(refused(
                format!(
                    "Query is nested too deep: at most {MAX_DEPTH} levels of fields \
                     (ofType in introspection does not count)"
                ),
                None,
            ));
        }
        if summary.cost > MAX_INTROSPECTION_COST {
            return Err(refused(
                format!(
                    "Introspection is too costly: about {} values, at most {MAX_INTROSPECTION_COST}",
                    summary.cost
                ),
                None,
            ));
        }
        let mut reached = HashSet::new();
        let mut to_check = vec![&operation.pages];
        while let Some(pages) = to_check.pop() {
            for name in &pages.spreads {
                if reached.insert(name)
                    && let Some(fragment) = self.fragments.get(name)
                {
                    to_check.push(fragment);
                }
            }
            for (pos, page) in &pages.arguments {
                check_page(page, *pos, variables, &operation.defaults)?;
            }
        }
        Ok(())
    }
}

/// One `first` argument, with the request's variables applied.
fn check_page(
    page: &Page,
    pos: Pos,
    variables: &Variables,
    defaults: &HashMap<Name, ConstValue>,
) -> Result<(), ServerError> {
    let n = match page {
        Page::Literal(n) => Some(*n),
        Page::Variable(name) => match variables.get(name).or_else(|| defaults.get(name)) {
            Some(ConstValue::Number(n)) => n.as_i64(),
            _ => None,
        },
    };
    if let Some(n) = n
        && let Err(why) = paging::check_first(n)
    {
        return Err(refused(why, Some(pos)));
    }
    Ok(())
}

fn refused(message: String, pos: Option<Pos>) -> ServerError {
    let err = coded(Code::BadUserInput, message);
    match pos {
        Some(pos) => err.into_server_error(pos),
        None => {
            let mut server = ServerError::new(err.message, None);
            server.extensions = err.extensions;
            server
        }
    }
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    /// Fragments' summaries, by name, so that each is walked once however
    /// often it is spread; `None` while one is being walked (a cycle, which
    /// validation refuses later, counts as nothing here).
    fragments: HashMap<&'a str, Option<Summary>>,
}

impl<'a> Walker<'a> {
    fn operation(&mut self, name: Option<Name>, op: &'a OperationDefinition) -> OperationShape {
        let defaults = op
            .variable_definitions
            .iter()
            .filter_map(|def| {
                let def = &def.node;
                def.default_value
                    .as_ref()
                    .map(|v| (def.name.node.clone(), v.node.clone()))
            })
            .collect();
        OperationShape {
            name,
            summary: self.selection_set(&op.selection_set.node, false, 1),
            pages: Pages::of(&op.selection_set.node),
            defaults,
        }
    }

    /// `introspection`: the fields here are introspection's (`__Type`, ...).
    /// `nesting`: this selection set's level, fragments included.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        introspection: bool,
        nesting: usize,
    ) -> Summary {
        let mut out = Summary::default();
        if nesting > MAX_NESTING {
            out.too_nested = true;
            return out;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let inside = introspection || enters_introspection(name);
                    let children =
                        self.selection_set(&field.selection_set.node, inside, nesting + 1);
                    let counted = !(introspection && name == "ofType");
                    let cost = if inside {
                        list_length(name)
                            .saturating_mul(children.cost)
                            .saturating_add(1)
                    } else {
                        children.cost
                    };
                    out.merge(Summary {
                        depth: children.depth + usize::from(counted),
                        cost,
                        too_nested: children.too_nested,
                    });
                }
                Selection::FragmentSpread(spread) => {
                    let summary = self.fragment(&spread.node.fragment_name.node, nesting);
                    out.merge(summary);
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let inside = introspection
                        || inline
                            .type_condition
                            .as_ref()
                            .is_some_and(|t| t.node.on.node.starts_with("__"));
                    let summary =
                        self.selection_set(&inline.selection_set.node, inside, nesting + 1);
                    out.merge(summary);
                }
            }
        }
        out
    }

    /// A named fragment's summary, worked out the first time it is spread.
    /// Its type condition says whether its fields are introspection's.
    fn fragment(&mut self, name: &'a Name, nesting: usize) -> Summary {
        if let Some(known) = self.fragments.get(name.as_str()) {
            return known.unwrap_or_default();
        }
        let Some(fragment) = self.doc.fragments.get(name) else {
            // Unknown: validation says so.
            return Summary::default();
        };
        self.fragments.insert(name.as_str(), None);
        let fragment = &fragment.node;
        let introspection = fragment.type_condition.node.on.node.starts_with("__");
        let summary = self.selection_set(&fragment.selection_set.node, introspection, nesting + 1);
        self.fragments.insert(name.as_str(), Some(summary));
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, variables: serde_json::Value) -> Result<(), String> {
        let doc = async_graphql::parser::parse_query(query).expect("the query parses");
        let variables = Variables::from_json(variables);
        Shape::of(&doc)
            .check(None, &variables)
            .map_err(|e| e.message)
    }

    fn shape(query: &str) -> Summary {
        let doc = async_graphql::parser::parse_query(query).expect("the query parses");
        let shape = Shape::of(&doc);
        shape.operations[0].summary
    }

    /// graphql-js 16's `getIntrospectionQuery()` with every option on, as
    /// GraphiQL and code generators send it.
    const STANDARD_INTROSPECTION: &str = include_str!("../../tests/fixtures/introspection.graphql");

    #[test]
    fn the_standard_introspection_query_fits_and_of_type_does_not_count() {
        let summary = shape(STANDARD_INTROSPECTION);
        // __schema > types > fields > args > type > kind
        assert_eq!(summary.depth, 6);
        assert!(
            (200_000..=MAX_INTROSPECTION_COST * 2 / 3).contains(&summary.cost),
            "the standard introspection query costs {}",
            summary.cost
        );
        assert_eq!(check(STANDARD_INTROSPECTION, serde_json::json!({})), Ok(()));
    }

    #[test]
    fn introspection_nested_through_fields_is_refused_for_its_cost_or_depth() {
        let nest = |levels: usize| {
            format!(
                "{{ __schema {{ types {{ {} name {} }} }} }}",
                "fields { type { ".repeat(levels),
                "} } ".repeat(levels)
            )
        };
        assert_eq!(check(&nest(2), serde_json::json!({})), Ok(()));
        let three = check(&nest(3), serde_json::json!({})).expect_err("three levels");
        assert!(three.starts_with("Introspection is too costly"), "{three}");
        let ten = check(&nest(10), serde_json::json!({})).expect_err("ten levels");
        assert!(ten.starts_with("Query is nested too deep"), "{ten}");
    }

    #[test]
    fn of_type_counts_outside_introspection_and_depth_counts_through_fragments() {
        // Not introspection: a field named ofType is a field like any other.
        let deep = format!("{{ {} id {} }}", "ofType { ".repeat(12), "} ".repeat(12));
        assert_eq!(shape(&deep).depth, 13);
        let spread = "{ me { ...a } } fragment a on User { activeReservations { ...b } } \
                      fragment b on Reservation { property { code } }";
        assert_eq!(shape(spread).depth, 4);
    }

    #[test]
    fn fragments_spreading_fragments_without_end_are_refused_quickly() {
        let chain: String = (0..10_000)
            .map(|i| format!("fragment f{i} on User {{ ...f{} }} ", i + 1))
            .collect();
        let query = format!("{{ me {{ ...f0 }} }} {chain} fragment f10000 on User {{ id }}");
        let err = check(&query, serde_json::json!({})).expect_err("too nested");
        assert!(err.starts_with("Query is nested too deep"), "{err}");
        // A cycle is validation's to refuse; here it just ends.
        let cycle = "{ me { ...a } } fragment a on User { ...b } fragment b on User { ...a }";
        assert_eq!(check(cycle, serde_json::json!({})), Ok(()));
    }

    #[test]
    fn a_fragment_full_of_pages_spread_thousands_of_times_is_looked_at_once() {
        let pages: String = (0..5_000)
            .map(|i| format!("p{i}: properties(first: 10) {{ nodes {{ id }} }} "))
            .collect();
        let query = format!(
            "{{ projects {{ nodes {{ {} }} }} }} fragment f on Project {{ {pages} }}",
            "...f ".repeat(5_000)
        );
        let started = std::time::Instant::now();
        assert_eq!(check(&query, serde_json::json!({})), Ok(()));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn page_lengths_are_checked_with_variables_and_defaults() {
        let q = "query($n: Int) { projects(first: 1) { nodes { ...p } } } \
                 fragment p on Project { properties(first: $n) { nodes { id } } }";
        assert_eq!(check(q, serde_json::json!({ "n": 100 })), Ok(()));
        assert_eq!(check(q, serde_json::json!({ "n": null })), Ok(()));
        assert_eq!(check(q, serde_json::json!({})), Ok(()));
        assert_eq!(
            check(q, serde_json::json!({ "n": 1000 })),
            Err("first is 1000; a page holds at most 100 items".into())
        );
        assert_eq!(
            check(q, serde_json::json!({ "n": -1 })),
            Err("first must not be negative".into())
        );
        let defaulted = "query($n: Int = 101) { projects(first: $n) { nodes { id } } }";
        assert!(check(defaulted, serde_json::json!({})).is_err());
        assert_eq!(check(defaulted, serde_json::json!({ "n": 5 })), Ok(()));
        // Not an integer: the schema's validation refuses it.
        assert_eq!(check(defaulted, serde_json::json!({ "n": "many" })), Ok(()));
    }

    #[test]
    fn only_the_operation_that_runs_is_checked() {
        let doc = async_graphql::parser::parse_query(
            "query A { projects(first: 1000) { nodes { id } } } query B { me { id } }",
        )
        .expect("parses");
        let shape = Shape::of(&doc);
        let none = Variables::default();
        assert!(shape.check(Some("A"), &none).is_err());
        assert!(shape.check(Some("B"), &none).is_ok());
        // Which one runs is for the schema to ask.
        assert!(shape.check(None, &none).is_ok());
    }

    #[test]
    fn every_first_argument_of_the_schema_is_a_page_length() {
        let sdl = super::super::sdl();
        let mut seen = 0;
        for line in sdl.lines().filter(|l| l.contains("first: Int")) {
            seen += 1;
            assert!(
                line.trim_end().ends_with("Connection!"),
                "`first` is taken for a page length everywhere, but here it is not: {line}"
            );
        }
        assert!(seen >= 5, "the schema's connections have `first`");
    }
}
