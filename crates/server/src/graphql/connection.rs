//! The connection types of the schema (Relay-style), one per node type, built
//! from a page.

use async_graphql::SimpleObject;

use super::line::QueueEntryNode;
use super::paging::{Page, PageInfo};
use super::types::{ProjectNode, PropertyNode, ReservationNode};

/// A connection type and its edge type for one node type: async-graphql
/// cannot name nested generic objects, so each is spelled out.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty) => {
        #[derive(SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[derive(SimpleObject)]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub nodes: Vec<$node>,
            pub page_info: PageInfo,
        }

        impl From<Page<$node>> for $connection {
            fn from(page: Page<$node>) -> Self {
                let nodes = page.items.iter().map(|(_, n)| n.clone()).collect();
                let edges = page
                    .items
                    .into_iter()
                    .map(|(cursor, node)| $edge { cursor, node })
                    .collect();
                $connection {
                    edges,
                    nodes,
                    page_info: page.page_info,
                }
            }
        }
    };
}

connection!(PropertyConnection, PropertyEdge, PropertyNode);
connection!(ReservationConnection, ReservationEdge, ReservationNode);
connection!(ProjectConnection, ProjectEdge, ProjectNode);
connection!(QueueEntryConnection, QueueEntryEdge, QueueEntryNode);
