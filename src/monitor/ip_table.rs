//! The detector's per-IP table: every tracked address and its state, found by address.
//!
//! Nearly every frame looks up one address here, so the lookup is the detector's hottest path. A
//! general-purpose hash map (hashbrown, through `FxHashMap`, with the state in its buckets) took
//! about 8 ns a lookup even with a handful of addresses, most of it the dependent steps of its
//! group probe, and spread the states over sparse buckets. This table is a linear-probing index of
//! 8-byte words (a tag from the hash, and a position) in front of dense vectors of addresses and
//! states: one multiply, one or two compares in an index small enough to stay in cache, one check
//! of the address, then the state. States move only when [`IpTable::retain`] drops some, which
//! rebuilds the index (eviction is rare and walks the whole table anyway).
//!
//! The hash is seeded per table at random: the addresses come from the wire, and a fixed
//! multiplicative hash would let anyone on the LAN pick addresses that all land in one run of the
//! index. Nothing else depends on the seed: states are kept, and iterated, in insertion order.

use std::hash::{BuildHasher, RandomState};

use crate::wire::iprange::IpKey;

/// An empty index slot (no state has position `u32::MAX`: the detector caps the table far below).
const EMPTY: u64 = u64::MAX;

/// Index slots there are at least per state: a linear probe then ends, on average, within two
/// slots.
const LOAD: usize = 2;

/// States by address, in insertion order.
pub struct IpTable<V> {
    /// Index slot → the upper 32 bits of the address's hash and its position in `states`, or
    /// [`EMPTY`].
    index: Vec<u64>,
    /// The addresses of `states`, apart: a lookup reads only its state's own cache lines.
    addresses: Vec<IpKey>,
    /// The states, dense.
    states: Vec<V>,
    /// Bits of the hash that pick a slot: log2(slots).
    bits: u32,
    seed: [u64; 2],
}

impl<V> IpTable<V> {
    /// A table with room for `capacity` states before its index first grows.
    pub fn with_capacity(capacity: usize) -> IpTable<V> {
        let slots = (capacity.max(8) * LOAD).next_power_of_two();
        // Two independent 64-bit values from the standard library's per-process random keys.
        let seed =
            [RandomState::new().hash_one(0x6c32_7761_7463_6801_u64), RandomState::new().hash_one(2_u64)];
        IpTable {
            index: vec![EMPTY; slots],
            addresses: Vec::with_capacity(capacity),
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

    /// The index slot holding `key`, or the empty slot where it would go, and the tag to store.
    #[inline(always)]
    fn find(&self, key: IpKey) -> (usize, bool, u64) {
        let hash = self.hash(key);
        let tag = hash & !u64::from(u32::MAX);
        let mask = self.index.len() - 1;
        let mut slot = (hash >> (64 - self.bits)) as usize;
        loop {
            // `slot` is masked to the index's length.
            let word = self.index[slot];
            if word == EMPTY {
                return (slot, false, tag);
            }
            if word & !u64::from(u32::MAX) == tag && self.addresses.get(word as u32 as usize) == Some(&key) {
                return (slot, true, tag);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Whether `key` has a state.
    #[inline]
    pub fn contains_key(&self, key: &IpKey) -> bool {
        self.find(*key).1
    }

    /// The state of `key`.
    #[inline]
    pub fn get(&self, key: &IpKey) -> Option<&V> {
        match self.find(*key) {
            (slot, true, _) => self.states.get(self.index[slot] as u32 as usize),
            _ => None,
        }
    }

    /// The state of `key`, made by `make` if there is none.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: IpKey, make: impl FnOnce() -> V) -> &mut V {
        let (mut slot, found, tag) = self.find(key);
        if !found {
            if (self.states.len() + 1) * LOAD > self.index.len() {
                self.grow();
                slot = self.find(key).0;
            }
            self.index[slot] = tag | self.states.len() as u64;
            self.addresses.push(key);
            self.states.push(make());
        }
        let pos = self.index[slot] as u32 as usize;
        &mut self.states[pos]
    }

    /// Every address and its state, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpKey, &V)> {
        self.addresses.iter().zip(&self.states)
    }

    /// Every address and its state, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&IpKey, &mut V)> {
        self.addresses.iter().zip(&mut self.states)
    }

    /// Every state.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.states.iter()
    }

    /// Keeps only the states `keep` says yes to; the rest keep their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&IpKey, &mut V) -> bool) {
        let mut kept = 0;
        for pos in 0..self.states.len() {
            if keep(&self.addresses[pos], &mut self.states[pos]) {
                self.addresses.swap(kept, pos);
                self.states.swap(kept, pos);
                kept += 1;
            }
        }
        if kept != self.states.len() {
            self.addresses.truncate(kept);
            self.states.truncate(kept);
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
        for (pos, key) in self.addresses.iter().enumerate() {
            let hash = self.hash(*key);
            let mut slot = (hash >> (64 - self.bits)) as usize;
            while self.index[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            self.index[slot] = hash & !u64::from(u32::MAX) | pos as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> IpKey {
        IpKey(0xffff_0000_0000 | u128::from(i))
    }

    #[test]
    fn finds_what_it_holds_and_nothing_else_across_growth_and_retain() {
        let mut t: IpTable<u32> = IpTable::with_capacity(4);
        let slots0 = t.slots();
        for i in 0..10_000 {
            *t.get_or_insert_with(key(i), || i) += 0;
        }
        assert!(t.slots() > slots0 && t.slots() >= LOAD * t.len(), "{} slots for {}", t.slots(), t.len());
        assert_eq!(t.len(), 10_000);
        // An existing state is returned, not made again.
        *t.get_or_insert_with(key(5), || unreachable!("made twice")) += 1;
        assert_eq!(t.get(&key(5)), Some(&6));
        for i in 0..10_000 {
            assert_eq!(t.get(&key(i)).copied().map(|v| v - u32::from(i == 5)), Some(i));
        }
        assert!(!t.contains_key(&key(10_000)) && t.get(&IpKey(7)).is_none());
        t.retain(|k, v| (k.0 as u32).is_multiple_of(3) && *v < 9_000);
        assert_eq!(t.len(), 3_000);
        for i in 0..10_000 {
            assert_eq!(t.contains_key(&key(i)), i.is_multiple_of(3) && i < 9_000, "{i}");
        }
        // Insertion order survives, and new states go after the kept ones.
        t.get_or_insert_with(key(1), || 1);
        let order: Vec<u32> = t.values().copied().collect();
        assert!(order[..order.len() - 1].windows(2).all(|w| w[0] < w[1]), "order lost");
        assert_eq!(t.iter().last().map(|(k, v)| (*k, *v)), Some((key(1), 1)));
    }

    #[test]
    fn keys_that_share_a_home_slot_are_all_found() {
        let mut t: IpTable<u128> = IpTable::with_capacity(64);
        // Keys that differ only in the high half, and keys that are all zero but one bit.
        let keys: Vec<IpKey> =
            (0..64).map(|i| IpKey(1u128 << (64 + i))).chain((0..64).map(|i| IpKey(1u128 << i))).collect();
        for k in &keys {
            t.get_or_insert_with(*k, || k.0);
        }
        for k in &keys {
            assert_eq!(t.get(k), Some(&k.0));
        }
        assert_eq!(t.len(), 128);
    }
}
