//! A Merkle tree over audit entries in the RFC 6962 / RFC 9162 shape:
//! leaves are `SHA-256(0x00 || data)`, interior nodes
//! `SHA-256(0x01 || left || right)`, and a tree of `n` leaves splits at the
//! largest power of two below `n`. Proofs produced here verify with any
//! RFC 9162 implementation, and the verifiers accept any correct one.

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

pub fn leaf_hash(data: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Digest(h.finalize().into())
}

pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Digest(h.finalize().into())
}

/// Root of the empty tree: the hash of the empty string.
pub fn empty_root() -> Digest {
    Digest(Sha256::digest([]).into())
}

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Every complete, aligned subtree hash, so that proofs for any size up to
/// the current one take O(log n) lookups and at most O(log n) hashes.
/// `levels[k][i]` covers leaves `[i * 2^k, (i + 1) * 2^k)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Digest>>,
}

/// Why a proof cannot be produced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofRequestError {
    #[error("leaf {index} is not in a tree of size {size}")]
    LeafOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is larger than the log ({len} entries)")]
    SizeTooLarge { size: u64, len: u64 },
    #[error("a consistency proof needs 0 < old size ({old}) <= new size ({new})")]
    BadSizes { old: u64, new: u64 },
}

impl MerkleTree {
    pub fn new() -> Self {
        MerkleTree::default()
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf whose leaf hash is already computed.
    pub fn push_leaf_hash(&mut self, leaf: Digest) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let nodes = &self.levels[level];
            let parent = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    pub fn root(&self) -> Digest {
        self.root_at(self.len()).expect("current size is in range")
    }

    /// Root of the tree made of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Digest, ProofRequestError> {
        if size > self.len() {
            return Err(ProofRequestError::SizeTooLarge {
                size,
                len: self.len(),
            });
        }
        Ok(if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        })
    }

    /// Hash of leaves `[start, start + n)`, where the range is one that the
    /// RFC 6962 recursion produces (so every power-of-two part is aligned).
    fn subtree(&self, start: u64, n: u64) -> Digest {
        if n.is_power_of_two() {
            let k = n.trailing_zeros() as usize;
            return self.levels[k][(start >> k) as usize];
        }
        let k = split_point(n);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, n - k))
    }

    /// Audit path for leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, ProofRequestError> {
        if size > self.len() {
            return Err(ProofRequestError::SizeTooLarge {
                size,
                len: self.len(),
            });
        }
        if index >= size {
            return Err(ProofRequestError::LeafOutOfRange { index, size });
        }
        let mut proof = Vec::with_capacity(64);
        // Iterative form of RFC 6962 PATH(m, D[n]); siblings are collected
        // root-first and reversed at the end.
        let (mut m, mut start, mut n) = (index, 0u64, size);
        while n > 1 {
            let k = split_point(n);
            if m < k {
                proof.push(self.subtree(start + k, n - k));
                n = k;
            } else {
                proof.push(self.subtree(start, k));
                m -= k;
                start += k;
                n -= k;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// Proof that the tree of `old` leaves is a prefix of the tree of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Digest>, ProofRequestError> {
        if new > self.len() {
            return Err(ProofRequestError::SizeTooLarge {
                size: new,
                len: self.len(),
            });
        }
        if old == 0 || old > new {
            return Err(ProofRequestError::BadSizes { old, new });
        }
        let mut proof = Vec::new();
        // Iterative RFC 6962 SUBPROOF(m, D[n], true).
        let (mut m, mut start, mut n, mut whole) = (old, 0u64, new, true);
        while m != n {
            let k = split_point(n);
            if m <= k {
                proof.push(self.subtree(start + k, n - k));
                n = k;
            } else {
                proof.push(self.subtree(start, k));
                m -= k;
                start += k;
                n -= k;
                whole = false;
            }
        }
        if !whole {
            proof.push(self.subtree(start, n));
        }
        proof.reverse();
        Ok(proof)
    }
}

/// Why a proof was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("proof has the wrong number of hashes")]
    WrongLength,
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    #[error("old size {old} is larger than new size {new}")]
    SizesReversed { old: u64, new: u64 },
}

/// RFC 9162 §2.1.3.2: verifies an inclusion proof.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Digest,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: verifies a consistency proof between two roots.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesReversed { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 {
        // Every tree extends the empty one; there is nothing to prove.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    let mut path: Vec<Digest> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a tree as it grows: one hash per set bit of its size.
/// Enough to compute the root at every size while streaming leaves, in
/// O(log n) memory (what `aura audit verify` uses on large exports).
#[derive(Clone, Debug, Default)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Digest>,
}

impl CompactRange {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push_leaf_hash(&mut self, leaf: Digest) {
        self.peaks.push(leaf);
        let mut merged = self.size;
        while merged & 1 == 1 {
            let right = self.peaks.pop().expect("a peak per set bit");
            let left = self.peaks.pop().expect("a peak per set bit");
            self.peaks.push(node_hash(&left, &right));
            merged >>= 1;
        }
        self.size += 1;
    }

    pub fn root(&self) -> Digest {
        let mut iter = self.peaks.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6962 definition, straight from the text, as an oracle.
    fn reference_root(leaves: &[Digest]) -> Digest {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn tree(n: u64) -> MerkleTree {
        let mut t = MerkleTree::new();
        for l in leaves(n) {
            t.push_leaf_hash(l);
        }
        t
    }

    #[test]
    fn roots_match_the_rfc_definition_at_every_size() {
        let all = leaves(70);
        let t = tree(70);
        let mut compact = CompactRange::default();
        for n in 0..=70u64 {
            assert_eq!(
                t.root_at(n).unwrap(),
                reference_root(&all[..n as usize]),
                "size {n}"
            );
            assert_eq!(
                compact.root(),
                reference_root(&all[..n as usize]),
                "compact {n}"
            );
            if n < 70 {
                compact.push_leaf_hash(all[n as usize]);
            }
        }
    }

    #[test]
    fn known_empty_root() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_tampering_fails() {
        let all = leaves(40);
        let t = tree(40);
        for size in 1..=40u64 {
            let root = t.root_at(size).unwrap();
            for i in 0..size {
                let proof = t.inclusion_proof(i, size).unwrap();
                verify_inclusion(i, size, &all[i as usize], &proof, &root).unwrap();
                assert!(
                    verify_inclusion(i, size, &all[(i as usize + 1) % 40], &proof, &root).is_err()
                );
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    bad[0].0[0] ^= 1;
                    assert!(verify_inclusion(i, size, &all[i as usize], &bad, &root).is_err());
                    let mut short = proof.clone();
                    short.pop();
                    assert!(verify_inclusion(i, size, &all[i as usize], &short, &root).is_err());
                }
                let mut long = proof.clone();
                long.push(all[0]);
                assert!(verify_inclusion(i, size, &all[i as usize], &long, &root).is_err());
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails() {
        let t = tree(40);
        for new in 1..=40u64 {
            let new_root = t.root_at(new).unwrap();
            for old in 1..=new {
                let old_root = t.root_at(old).unwrap();
                let proof = t.consistency_proof(old, new).unwrap();
                verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
                if old < new {
                    let mut wrong_old = old_root;
                    wrong_old.0[5] ^= 0x80;
                    assert!(verify_consistency(old, new, &wrong_old, &new_root, &proof).is_err());
                    for j in 0..proof.len() {
                        let mut bad = proof.clone();
                        bad[j].0[31] ^= 1;
                        assert!(
                            verify_consistency(old, new, &old_root, &new_root, &bad).is_err(),
                            "old {old} new {new} hash {j}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_proof_requests_are_refused() {
        let t = tree(5);
        assert_eq!(
            t.inclusion_proof(5, 5),
            Err(ProofRequestError::LeafOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            t.inclusion_proof(0, 6),
            Err(ProofRequestError::SizeTooLarge { size: 6, len: 5 })
        );
        assert_eq!(
            t.consistency_proof(0, 3),
            Err(ProofRequestError::BadSizes { old: 0, new: 3 })
        );
    }
}
