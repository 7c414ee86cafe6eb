//! The dependency graph: a stable topological order and cycle reports that show the cycle.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Services by name with the names they depend on (names that are not keys are ignored).
pub type Graph = BTreeMap<String, Vec<String>>;

/// The dependencies of `n` that are services of the graph.
fn deps<'a>(graph: &'a Graph, n: &str) -> impl Iterator<Item = &'a str> {
    graph
        .get(n)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .filter(|d| graph.contains_key(*d))
}

/// Orders the services so that dependencies come before dependents; among services whose
/// dependencies are all placed, the smallest name goes first. Returns the cycles instead
/// when there are any, one per strongly connected component, each as `a -> b -> a`
/// starting at the component's smallest name.
pub fn order(graph: &Graph) -> Result<Vec<String>, Vec<String>> {
    let cycles = cycles(graph);
    if !cycles.is_empty() {
        return Err(cycles);
    }
    // By index into the sorted names, not BTreeMaps keyed by name: each map type's insert
    // code is a KB-sized copy in the binary (issue 16).
    let names: Vec<&str> = graph.keys().map(String::as_str).collect();
    let at = |n: &str| names.binary_search(&n).ok();
    let mut missing = vec![0usize; names.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (i, name) in names.iter().enumerate() {
        // extend, not collect: collecting into a set sorts, with its own copy of the sort.
        let mut ds: BTreeSet<&str> = BTreeSet::new();
        ds.extend(deps(graph, name));
        missing[i] = ds.len();
        for j in ds.into_iter().filter_map(at) {
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<&str> = BTreeSet::new();
    ready.extend(
        names
            .iter()
            .zip(&missing)
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k),
    );
    let mut out = Vec::with_capacity(graph.len());
    while let Some(next) = ready.pop_first() {
        out.push(next.to_owned());
        for &i in at(next).map(|j| &dependents[j][..]).unwrap_or_default() {
            missing[i] -= 1;
            if missing[i] == 0 {
                ready.insert(names[i]);
            }
        }
    }
    Ok(out)
}

/// Every dependency cycle, one per strongly connected component (Tarjan), as a message.
fn cycles(graph: &Graph) -> Vec<String> {
    let names: Vec<&str> = graph.keys().map(String::as_str).collect();
    let mut t = Tarjan {
        graph,
        index: vec![UNSEEN; names.len()],
        low: vec![UNSEEN; names.len()],
        names,
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for (i, name) in graph.keys().enumerate() {
        if t.index[i] == UNSEEN {
            t.visit(name);
        }
    }
    let mut out = Vec::new();
    for comp in t.components {
        let self_loop = comp.len() == 1 && deps(graph, comp[0]).any(|d| d == comp[0]);
        if comp.len() > 1 || self_loop {
            out.push(format!(
                "dependency cycle: {}",
                cycle_path(graph, &comp).join(" -> ")
            ));
        }
    }
    super::sort_by_str(&mut out, |c| c);
    out
}

/// The shortest cycle through the component's smallest name, staying inside the component.
fn cycle_path<'a>(graph: &'a Graph, comp: &[&'a str]) -> Vec<&'a str> {
    let mut inside: BTreeSet<&str> = BTreeSet::new();
    inside.extend(comp.iter().copied());
    let Some(&start) = inside.first() else {
        return Vec::new();
    };
    // Breadth-first from start's dependencies back to start; deps are sorted, so stable.
    // (service, the one it was reached from): a short list, searched linearly (issue 16).
    let mut parent: Vec<(&str, &str)> = Vec::new();
    let mut queue: VecDeque<&str> = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for d in deps(graph, n) {
            if d == start {
                let mut path = vec![start];
                let mut at = n;
                while at != start {
                    path.push(at);
                    let Some(&(_, p)) = parent.iter().find(|p| p.0 == at) else {
                        break; // unreachable: every queued name but start has a parent
                    };
                    at = p;
                }
                path.push(start);
                let end = path.len() - 1;
                path[1..end].reverse();
                return path;
            }
            if inside.contains(d) && !parent.iter().any(|p| p.0 == d) {
                parent.push((d, n));
                queue.push_back(d);
            }
        }
    }
    vec![start]
}

/// Not visited yet, in [`Tarjan::index`].
const UNSEEN: usize = usize::MAX;

/// Tarjan's state; `index` and `low` are by position in `names` (the graph's sorted keys),
/// not BTreeMaps: each map type's insert code is a KB-sized copy (issue 16).
struct Tarjan<'a> {
    graph: &'a Graph,
    names: Vec<&'a str>,
    index: Vec<usize>,
    low: Vec<usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    next: usize,
    components: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    /// The position of `n` in `names`; `n` is always a key (`deps` yields only keys).
    fn pos(&self, n: &str) -> usize {
        self.names.binary_search(&n).unwrap_or(0)
    }

    // Recursive: a service tree has at most a few hundred services.
    fn visit(&mut self, v: &'a str) {
        let iv = self.pos(v);
        self.index[iv] = self.next;
        self.low[iv] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for w in deps(self.graph, v) {
            let iw = self.pos(w);
            if self.index[iw] == UNSEEN {
                self.visit(w);
                self.low[iv] = self.low[iv].min(self.low[iw]);
            } else if self.on_stack.contains(w) {
                self.low[iv] = self.low[iv].min(self.index[iw]);
            }
        }
        if self.low[iv] == self.index[iv] {
            let mut comp = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(comp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph from `"NAME DEPENDENCY..."` entries, one a service.
    fn g(entries: &[&str]) -> Graph {
        entries
            .iter()
            .map(|e| {
                let mut words = e.split(' ').map(String::from);
                (words.next().unwrap_or_default(), words.collect())
            })
            .collect()
    }

    #[test]
    fn orders_dependencies_first_ties_by_name() {
        let graph = g(&[
            "web database",
            "worker database",
            "database prepare",
            "prepare",
            "alone",
            "zed ghost",
        ]);
        assert_eq!(
            order(&graph).unwrap(),
            ["alone", "prepare", "database", "web", "worker", "zed"]
        );
    }

    #[test]
    fn cycles_show_their_path() {
        let graph = g(&["c a", "a b", "b c", "x x", "ok", "after a"]);
        assert_eq!(
            order(&graph).unwrap_err(),
            [
                "dependency cycle: a -> b -> c -> a",
                "dependency cycle: x -> x"
            ]
        );
    }

    #[test]
    fn one_report_per_tangle_with_the_shortest_cycle() {
        let graph = g(&["a b c", "b a", "c b"]);
        assert_eq!(
            order(&graph).unwrap_err(),
            ["dependency cycle: a -> b -> a"]
        );
    }
}
