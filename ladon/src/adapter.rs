//! [`Adapter`]: a user's cluster as a simulated adapter of Ladon's.

use std::sync::Arc;

use ladon_adapters::node::Cluster;
use ladon_harness::adapters::{ClusterAdapter, DynAdapter};
use ladon_harness::options::RunOptions;

/// Your cluster as a simulated adapter: what [`cli::main_with`](crate::cli::main_with)
/// registers under a name, and what a [`Test`](crate::Test) runs.
#[derive(Clone)]
pub struct Adapter {
    pub(crate) about: String,
    pub(crate) inner: Arc<dyn DynAdapter>,
}

impl Adapter {
    /// An adapter whose cluster `build(nodes)` makes for a run of `nodes`
    /// nodes (`--nodes`).
    pub fn new<C, F>(build: F) -> Adapter
    where
        F: Fn(usize) -> C + Send + Sync + 'static,
        C: Cluster,
        C::Node: 'static,
    {
        Self::with_options(move |o: &RunOptions| Ok(build(o.nodes)))
    }

    /// An adapter whose cluster is built from all of a run's options (e.g.
    /// to read `--nodes` and `--workload`); an error refuses the run with
    /// its message.
    pub fn with_options<C, F>(build: F) -> Adapter
    where
        F: Fn(&RunOptions) -> Result<C, crate::Error> + Send + Sync + 'static,
        C: Cluster,
        C::Node: 'static,
    {
        Adapter {
            about: format!("{} (simulated)", short_type_name::<C>()),
            inner: Arc::new(ClusterAdapter(build)),
        }
    }

    /// The line `ladon adapters` shows for it (default: the cluster's type).
    pub fn about(mut self, line: impl Into<String>) -> Adapter {
        self.about = line.into();
        self
    }
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

/// `C`'s name without its path or generic arguments: `MyStore`.
pub(crate) fn short_type_name<C>() -> &'static str {
    let full = std::any::type_name::<C>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// A type name as an adapter name: `MyStore` → `my-store`.
pub(crate) fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_names_come_from_the_cluster_type() {
        assert_eq!(
            short_type_name::<ladon_adapters::toy::ToyCluster>(),
            "ToyCluster"
        );
        assert_eq!(kebab("ToyCluster"), "toy-cluster");
        assert_eq!(kebab("MyStore"), "my-store");
        assert_eq!(kebab("KV2Store"), "k-v2-store");
        assert_eq!(kebab("lower_case"), "lower-case");
    }
}
