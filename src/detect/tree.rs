//! Growing one isolation tree into flat arrays.
//!
//! A tree is a `Vec<Node>` whose children sit side by side: an internal node
//! sends a row to `next` when `x[feature] <= split` and to `next + 1` otherwise.
//! A leaf has `split = NaN` and `next` pointing at itself, so any comparison
//! keeps a row where it is: scoring can walk every tree a fixed number of steps
//! without a branch on "is this a leaf". `leaf_value[i]` holds a leaf's path
//! length, its depth plus c(size).

use rand::rngs::StdRng;
use rand::Rng;

use super::average_path_length;

/// One node of a flat tree. 16 bytes, so four fit in a cache line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    /// Split value; NaN in a leaf.
    pub split: f64,
    /// Feature compared at this node; 0 in a leaf.
    pub feature: u32,
    /// Index of the left child (right is `next + 1`); the node itself in a leaf.
    pub next: u32,
}

impl PartialEq for Node {
    /// Bitwise on `split`, so two leaves (split NaN) compare equal.
    fn eq(&self, other: &Node) -> bool {
        self.split.to_bits() == other.split.to_bits()
            && self.feature == other.feature
            && self.next == other.next
    }
}

impl Node {
    pub(crate) fn leaf(at: u32) -> Node {
        Node {
            split: f64::NAN,
            feature: 0,
            next: at,
        }
    }

    pub(crate) fn is_leaf(&self, at: u32) -> bool {
        self.next == at
    }

    /// The child a row goes to; a leaf returns itself.
    #[inline(always)]
    pub(crate) fn step(&self, row: &[f64]) -> u32 {
        self.next + u32::from(row[self.feature as usize] > self.split)
    }
}

/// A grown tree with indices relative to its own first node.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub leaf_value: Vec<f64>,
    /// Training rows that reached each node (explanations weigh splits by it).
    pub size: Vec<u32>,
    /// Depth of the deepest leaf: the number of steps that reaches any leaf.
    pub height: u32,
}

/// Grows one tree on `sample` (row-major, `cols` wide), splitting until a node
/// holds one row, its rows are all equal, or it reaches `height_limit`.
pub(crate) fn grow(sample: &[f64], cols: usize, height_limit: u32, rng: &mut StdRng) -> Tree {
    let rows = sample.len() / cols;
    let mut ids: Vec<u32> = (0..rows as u32).collect();
    let mut builder = Builder {
        sample,
        cols,
        height_limit,
        rng,
        tree: Tree {
            nodes: vec![Node::leaf(0)],
            leaf_value: vec![0.0],
            size: vec![0],
            height: 0,
        },
        candidates: Vec::with_capacity(cols),
    };
    builder.grow_node(0, &mut ids, 0);
    builder.tree
}

struct Builder<'a> {
    sample: &'a [f64],
    cols: usize,
    height_limit: u32,
    rng: &'a mut StdRng,
    tree: Tree,
    /// Reused buffer: (feature, min, max) of the features not constant in a node.
    candidates: Vec<(u32, f64, f64)>,
}

impl Builder<'_> {
    fn value(&self, row: u32, feature: usize) -> f64 {
        self.sample[row as usize * self.cols + feature]
    }

    fn make_leaf(&mut self, at: usize, depth: u32, size: usize) {
        self.tree.nodes[at] = Node::leaf(at as u32);
        self.tree.leaf_value[at] = f64::from(depth) + average_path_length(size);
    }

    fn grow_node(&mut self, at: usize, ids: &mut [u32], depth: u32) {
        self.tree.size[at] = ids.len() as u32;
        if depth >= self.height_limit || ids.len() <= 1 {
            return self.make_leaf(at, depth, ids.len());
        }
        // The split attribute is drawn among the attributes that vary in this node.
        self.candidates.clear();
        for f in 0..self.cols {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &id in ids.iter() {
                let v = self.value(id, f);
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi > lo {
                self.candidates.push((f as u32, lo, hi));
            }
        }
        if self.candidates.is_empty() {
            return self.make_leaf(at, depth, ids.len());
        }
        let pick = self.rng.random_range(0..self.candidates.len());
        let (feature, lo, hi) = self.candidates[pick];
        let u: f64 = self.rng.random(); // [0, 1)
        let mut split = lo + u * (hi - lo);
        if !split.is_finite() {
            // hi - lo overflowed; this form cannot.
            split = lo * (1.0 - u) + hi * u;
        }
        if split >= hi {
            // Rounding: keep at least one row on the right.
            split = lo;
        }
        // Rows with x <= split go left: both sides are non-empty since lo <= split < hi.
        let mid = partition(ids, |id| self.value(id, feature as usize) <= split);
        let left = self.tree.nodes.len();
        self.tree.nodes.extend([Node::leaf(0), Node::leaf(0)]);
        self.tree.leaf_value.extend([0.0, 0.0]);
        self.tree.size.extend([0, 0]);
        self.tree.nodes[at] = Node {
            split,
            feature,
            next: left as u32,
        };
        self.tree.height = self.tree.height.max(depth + 1);
        let (l, r) = ids.split_at_mut(mid);
        self.grow_node(left, l, depth + 1);
        self.grow_node(left + 1, r, depth + 1);
    }
}

/// Moves the ids for which `goes_left` holds to the front; returns how many.
fn partition(ids: &mut [u32], goes_left: impl Fn(u32) -> bool) -> usize {
    let mut mid = 0;
    for i in 0..ids.len() {
        if goes_left(ids[i]) {
            ids.swap(i, mid);
            mid += 1;
        }
    }
    mid
}
