//! The detector's per-IP table: every tracked address and its state, found by address.
//!
//! Nearly every frame looks up one address here, so the lookup is the detector's hottest path. A
//! general-purpose hash map (hashbrown, through `FxHashMap`, with the state in its buckets) took
//! about 8 ns a lookup even with a handful of addresses, most of it the dependent steps of its
//! group probe, and spread the states over sparse buckets. This table is a linear-probing index of
//! 8-byte words (a tag from the hash, and a position) in front of a dense vector of states, each
//! holding its own address ([`Keyed`]): one multiply, one or two compares in an index small enough
//! to stay in cache, then the state, whose address is checked in the cache line the caller reads
//! next anyway. States move only when [`IpTable::retain`] drops some, which rebuilds the index
//! (eviction is rare and walks the whole table anyway).
//!
//! The hash is seeded per table at random: the addresses come from the wire, and a fixed
//! multiplicative hash would let anyone on the LAN pick addresses that all land in one run of the
//! index. Nothing else depends on the seed: states are kept, and iterated, in insertion order.

use std::hash::{BuildHasher, RandomState};

use crate::wire::iprange::IpKey;

/// An empty index slot (no state has position `u32::MAX`: the detector caps the table far below).
const EMPTY: u64 = u64::MAX;

/// The bits of an index word that hold the tag (the upper half of the hash); the rest is the
/// position.
const TAG: u64 = !(u32::MAX as u64);

/// Index slots there are at least per state: a linear probe then ends, on average, within two
/// slots.
const LOAD: usize = 2;

/// A state that knows the address it is for.
pub trait Keyed {
    /// The address.
    fn key(&self) -> IpKey;
}

/// States by address, in insertion order.
pub struct IpTable<V> {
    /// Index slot → the upper 32 bits of the address's hash and its position in `states`, or
    /// [`EMPTY`].
    index: Vec<u64>,
    /// The states, dense.
    states: Vec<V>,
    /// Bits of the hash that pick a slot: log2(slots).
    bits: u32,
    seed: [u64; 2],
}

impl<V: Keyed> IpTable<V> {
    /// A table with room for `capacity` states before its index first grows.
    pub fn with_capacity(capacity: usize) -> IpTable<V> {
        let slots = (capacity.max(8) * LOAD).next_power_of_two();
        // Two independent 64-bit values from the standard library's per-process random keys.
        let seed =
            [RandomState::new().hash_one(0x6c32_7761_7463_6801_u64), RandomState::new().hash_one(2_u64)];
        IpTable {
            index: vec![EMPTY; slots],
            states: Vec::with_capacity(capacity),
            bits: slots.trailing_zeros(),
            seed,
        }
    }

    /// Number of states.
    #[inline]
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// States there is room for before the state vector grows.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.states.capacity()
    }

    /// Slots in the index.
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.index.len()
    }

    #[inline(always)]
    fn hash(&self, key: IpKey) -> u64 {
        let lo = key.0 as u64;
        let hi = (key.0 >> 64) as u64;
        // Two multiply rounds by odd constants over the seeded halves: every input bit reaches the
        // top bits, which pick the slot and make the tag.
        ((lo ^ self.seed[0]).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hi ^ self.seed[1])
            .wrapping_mul(0xd6e8_feb8_6659_fd93)
    }

    /// The slot a hash's probe starts at.
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> (64 - self.bits)) as usize
    }

    /// The position of `key`'s state, or the empty slot where it would go and the word to store
    /// there without the position.
    #[inline(always)]
    fn find(&self, key: IpKey) -> Result<usize, (usize, u64)> {
        let hash = self.hash(key);
        let mask = self.index.len() - 1;
        let mut slot = self.home(hash);
        loop {
            // `slot` is masked to the index's length.
            let word = self.index[slot];
            if word == EMPTY {
                return Err((slot, hash & TAG));
            }
            let pos = word as u32 as usize;
            if word & TAG == hash & TAG && self.states.get(pos).is_some_and(|s| s.key() == key) {
                return Ok(pos);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Whether `key` has a state.
    #[inline]
    pub fn contains_key(&self, key: &IpKey) -> bool {
        self.find(*key).is_ok()
    }

    /// The state of `key`.
    #[inline]
    pub fn get(&self, key: &IpKey) -> Option<&V> {
        self.find(*key).ok().and_then(|pos| self.states.get(pos))
    }

    /// The state of `key`, made by `make` (which must give it `key`) if there is none.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: IpKey, make: impl FnOnce() -> V) -> &mut V {
        let pos = match self.find(key) {
            Ok(pos) => pos,
            Err(mut empty) => {
                if (self.states.len() + 1) * LOAD > self.index.len() {
                    self.grow();
                    empty = self.find(key).err().unwrap_or(empty);
                }
                let (slot, tag) = empty;
                let pos = self.states.len();
                self.index[slot] = tag | pos as u64;
                let state = make();
                debug_assert!(state.key() == key, "a state made for another address");
                self.states.push(state);
                pos
            }
        };
        &mut self.states[pos]
    }

    /// Every state, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.states.iter()
    }

    /// Every state, mutable.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.states.iter_mut()
    }

    /// Keeps only the states `keep` says yes to; the rest keep their order.
    pub fn retain(&mut self, keep: impl FnMut(&mut V) -> bool) {
        let before = self.states.len();
        self.states.retain_mut(keep);
        if self.states.len() != before {
            self.reindex();
        }
    }

    fn grow(&mut self) {
        self.index = vec![EMPTY; self.index.len() * 2];
        self.bits += 1;
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index.fill(EMPTY);
        let mask = self.index.len() - 1;
        for pos in 0..self.states.len() {
            let hash = self.hash(self.states[pos].key());
            let mut slot = self.home(hash);
            while self.index[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            self.index[slot] = hash & TAG | pos as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct S {
        ip: IpKey,
        v: u32,
    }

    impl Keyed for S {
        fn key(&self) -> IpKey {
            self.ip
        }
    }

    fn key(i: u32) -> IpKey {
        IpKey(0xffff_0000_0000 | u128::from(i))
    }

    fn v(t: &IpTable<S>, i: u32) -> Option<u32> {
        t.get(&key(i)).map(|s| s.v)
    }

    #[test]
    fn finds_what_it_holds_and_nothing_else_across_growth_and_retain() {
        let mut t: IpTable<S> = IpTable::with_capacity(4);
        let slots0 = t.slots();
        for i in 0..10_000 {
            t.get_or_insert_with(key(i), || S { ip: key(i), v: i });
        }
        assert!(t.slots() > slots0 && t.slots() >= LOAD * t.len(), "{} slots for {}", t.slots(), t.len());
        assert_eq!(t.len(), 10_000);
        // An existing state is returned, not made again.
        t.get_or_insert_with(key(5), || unreachable!("made twice")).v += 1;
        assert_eq!(v(&t, 5), Some(6));
        for i in 0..10_000 {
            assert_eq!(v(&t, i).map(|v| v - u32::from(i == 5)), Some(i));
        }
        assert!(!t.contains_key(&key(10_000)) && t.get(&IpKey(7)).is_none());
        t.retain(|s| (s.ip.0 as u32).is_multiple_of(3) && s.v < 9_000);
        assert_eq!(t.len(), 3_000);
        for i in 0..10_000 {
            assert_eq!(t.contains_key(&key(i)), i.is_multiple_of(3) && i < 9_000, "{i}");
            assert_eq!(v(&t, i).is_some(), t.contains_key(&key(i)));
        }
        // Insertion order survives, and new states go after the kept ones.
        t.get_or_insert_with(key(1), || S { ip: key(1), v: 1 });
        let order: Vec<u32> = t.values().map(|s| s.v).collect();
        assert!(order[..order.len() - 1].windows(2).all(|w| w[0] < w[1]), "order lost");
        assert_eq!(order.last(), Some(&1));
        t.values_mut().for_each(|s| s.v = 0);
        assert_eq!(v(&t, 3), Some(0));
    }

    #[test]
    fn keys_that_share_a_home_slot_are_all_found() {
        let mut t: IpTable<S> = IpTable::with_capacity(64);
        // Keys that differ only in the high half, and keys that are all zero but one bit.
        let keys: Vec<IpKey> =
            (0..64).map(|i| IpKey(1u128 << (64 + i))).chain((0..64).map(|i| IpKey(1u128 << i))).collect();
        for (n, k) in keys.iter().enumerate() {
            t.get_or_insert_with(*k, || S { ip: *k, v: n as u32 });
        }
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k).map(|s| s.v), Some(n as u32));
        }
        assert_eq!(t.len(), 128);
    }
}
